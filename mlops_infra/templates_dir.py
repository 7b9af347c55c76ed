"""Where the templates are: inside the wheel (mlops_infra.templates) or the source tree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def templates_root() -> Path:
    # Installed, the top-level templates/ directory is the package
    # mlops_infra.templates (see setup.py). Imported straight from a source
    # checkout (tests run from the repository), it is the sibling folder.
    try:
        return Path(str(resources.files("mlops_infra.templates")))
    except ModuleNotFoundError:
        source = Path(__file__).resolve().parent.parent / "templates"
        if source.is_dir():
            return source
        raise
