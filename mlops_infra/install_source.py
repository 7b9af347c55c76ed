"""Where the CI workflow `init` writes installs mlops-infra from: a pip requirement that exists.

mlops-infra is not on PyPI, so `pip install mlops-infra==X` is no answer. `init
--install-from` takes one of:
- a pinned git ref: git+https://host/owner/mlops-infra@TAG-or-COMMIT (pip builds
  the wheel in the job; its cache keeps wheels built from a commit id);
- a path inside the project: a checkout or submodule of mlops-infra (pip builds a
  wheel from it in the job) or a .whl file committed there;
- `index`: mlops-infra==<this version> from the package index pip is configured with.
Without it, the source is the one this installation came from (PEP 610
direct_url.json): the git URL and commit it was installed from, or the origin
remote and commit of the checkout it was installed from. When neither is known
the workflow's install step stops with the fix (set MLOPS_INFRA_INSTALL).
The requirement names the extra of the target cloud, so only its SDK is installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlops_infra.errors import UsageError

DISTRIBUTION = "mlops-infra"
_PINNED = re.compile(r"^git\+(https|ssh|file)://([^\s@/]+@)?[^\s@/]*/[^\s@]*@[\w./-]+$")  # [user@]host/path@ref


@dataclass(frozen=True)
class InstallSource:
    requirement: str  # what `pip install` gets; "" when unknown
    origin: str  # how it was chosen, for the workflow's comment and init's output


def requirement_for(source: str, *, extra: str, version: str) -> InstallSource:
    """The pip requirement for an explicit --install-from value."""
    source = source.strip()
    if not source or any(c in "\"'\\$`" or c.isspace() for c in source):
        raise UsageError(
            f"--install-from {source!r} cannot be written into the workflow",
            hint="give a git URL with @ref, a path in the project, or `index`",
        )
    if source == "index":
        return InstallSource(f"{DISTRIBUTION}[{extra}]=={version}", "the package index, this version")
    if source.startswith("git+"):
        if not _PINNED.match(source):
            raise UsageError(
                f"--install-from {source!r} is not a pinned git ref",
                hint="write git+https://host/owner/mlops-infra@v0.1.0 (a tag or a commit id), so every run installs the same code",
            )
        return InstallSource(f"{DISTRIBUTION}[{extra}] @ {source}", "a pinned git ref (--install-from)")
    if source.startswith(("/", "~")):
        raise UsageError(
            f"--install-from {source!r} is a path on this machine, which CI runners do not have",
            hint="give a path inside the project (e.g. vendor/mlops-infra), a pinned git URL, or `index`",
        )
    if source.startswith(("./", "../")) or not re.match(r"^[a-z][a-z0-9+.-]*:", source):
        path = source if source.startswith(("./", "../")) else f"./{source}"
        kind = "a wheel in the repository" if path.endswith(".whl") else "a path in the repository, built in the job"
        return InstallSource(f"{path}[{extra}]", f"{kind} (--install-from)")
    raise UsageError(
        f"--install-from {source!r} is not a source the workflow can install from",
        hint="give git+https://...@ref, a path in the project (./vendor/mlops-infra or a .whl), or `index`",
    )


def installed_source(*, extra: str, version: str) -> InstallSource:
    """Where this installation came from, as a requirement CI can install again."""
    found = _installed_source(extra=extra, version=version)
    if not re.fullmatch(r"[\w.:/@+~%\[\]= -]*", found.requirement):
        # Written into a GitHub expression and a shell variable: no quotes, dollars or backslashes.
        return InstallSource("", f"unknown: {found.requirement!r} cannot be written into the workflow")
    return found


def _installed_source(*, extra: str, version: str) -> InstallSource:
    try:
        direct = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    if direct is None:
        return InstallSource(f"{DISTRIBUTION}[{extra}]=={version}", "the package index this copy came from")
    info = json.loads(direct)
    vcs = info.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id"):
        url = f"git+{info['url']}@{vcs['commit_id']}"
        return InstallSource(f"{DISTRIBUTION}[{extra}] @ {url}", "the git commit this copy was installed from")
    url = str(info.get("url", ""))
    if url.startswith("file://") and "dir_info" in info:
        pinned = _checkout_ref(Path(url[len("file://") :]))
        if pinned:
            return InstallSource(
                f"{DISTRIBUTION}[{extra}] @ {pinned}",
                "the origin remote and commit of the checkout this copy was installed from (push that commit)",
            )
    return InstallSource("", "unknown: this copy was installed from a folder with no git remote")


def _checkout_ref(folder: Path) -> str | None:
    """git+<origin>@<HEAD commit> of a checkout, or None."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None

    origin, commit = git("remote", "get-url", "origin"), git("rev-parse", "HEAD")
    if not origin or not commit:
        return None
    scp_like = re.match(r"^([\w.-]+@[\w.-]+):(.+)$", origin)
    if scp_like:
        origin = f"ssh://{scp_like.group(1)}/{scp_like.group(2)}"
    if not origin.startswith(("https://", "ssh://")):
        return None
    return f"git+{origin}@{commit}"
