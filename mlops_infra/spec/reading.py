"""Read an input file (a spec, an older plan document) safely: a regular file, with a size bound.

A named pipe would block the open until something writes to it, and a device such as
/dev/zero never ends: both are refused before a byte is read. The read itself stops one byte
past the limit, so a file that grows while it is read cannot exhaust memory either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlops_infra.errors import UsageError

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_regular_file(
    path: Path, *, limit: int, what: str, missing: str | None = None, missing_hint: str | None = None
) -> bytes:
    """The bytes of `path`, at most `limit` of them; UsageError for anything that is not a readable
    regular file (`missing`: the message when there is no such file)."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (we refuse it right after).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(missing or f"{what} not found: {path}", hint=missing_hint) from None
    except ValueError:  # a NUL character in the path (possible from Python, not from a shell)
        raise UsageError(f"cannot read {what} {path!r}: the path contains a NUL character") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}", hint=_open_hint(exc)) from None
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{path} is a directory, not a {what}", hint=missing_hint)
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise UsageError(
                f"{path} is {kind}, not a regular file: a {what} is read from a file",
                hint="write it to a file first (named pipes, process substitution and devices are not read)",
            )
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UsageError(f"{path} is larger than {limit:,} bytes; a {what} is far smaller than that")
    return data


def _open_hint(exc: OSError) -> str | None:
    import errno

    if exc.errno == errno.ENAMETOOLONG:
        return "a file name is at most 255 bytes (and a path at most 4,096): check the path"
    if exc.errno == errno.EACCES:
        return "check the file's permissions"
    return None
