"""One typed exception per user-facing condition; the CLI maps each to an exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_infra.spec.problems import Problem

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2
EXIT_TOOLING = 3
EXIT_DEPLOY = 4


class MlopsInfraError(Exception):
    """Base of every error shown to users without a traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict = {}  # extra fields for the --json error document


class UsageError(MlopsInfraError):
    """Bad command-line input: a missing file, an unknown stack, a bad flag combination."""

    exit_code = EXIT_INVALID


class SpecInvalid(MlopsInfraError):
    """The spec has one or more problems; all of them are carried."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: "list[Problem]", *, warnings: "list[Problem] | None" = None) -> None:
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the spec")
        self.problems = problems
        self.warnings = warnings or []
        # For the summary line: what was checked (default: the first problem's file) and how
        # many problems it has in all (more than are carried when a list is cut short).
        self.subject: str | None = None
        self.total = count


class PlanDocumentInvalid(SpecInvalid):
    """An older plan document (plan --against) is malformed; every problem is carried."""

    def __init__(self, problems: "list[Problem]", *, source: str, total: int) -> None:
        super().__init__(problems)
        self.subject = f"the plan document {source} (--against)"
        self.total = total
        self.message = f"{total} problem{'s' if total != 1 else ''} in {self.subject}"
        self.args = (self.message,)


class ToolingMissing(MlopsInfraError):
    """The Pulumi CLI, a plugin or cloud credentials are not available."""

    exit_code = EXIT_TOOLING


class DeployFailed(MlopsInfraError):
    """The engine ran and failed."""

    exit_code = EXIT_DEPLOY


class InternalError(MlopsInfraError):
    """A bug in mlops-infra itself (a generated name broke a cloud rule, say)."""

    exit_code = EXIT_FAILURE
