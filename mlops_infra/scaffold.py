"""`mlops-infra init`: a ready project from the jinja2 templates shipped in the wheel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_infra import __version__
from mlops_infra.errors import UsageError
from mlops_infra.install_source import InstallSource, installed_source, requirement_for
from mlops_infra.templating import render
from mlops_infra.spec.types import SLUG_RE

# template (under templates/init/) -> file written in the new project
FILES = {
    "stacks/dev.yaml.j2": "stacks/dev.yaml",
    "Pulumi.yaml.j2": "Pulumi.yaml",
    "__main__.py.j2": "__main__.py",
    "README.md.j2": "README.md",
    "gitignore.j2": ".gitignore",
    "ci/github-workflow.yml.j2": ".github/workflows/mlops-infra.yml",
}


@dataclass
class InitResult:
    directory: Path
    files: list[str]
    install: InstallSource  # what the CI workflow installs mlops-infra from

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mlops-infra/init/v1",
            "directory": str(self.directory),
            "files": self.files,
            "ci_install": {"requirement": self.install.requirement or None, "origin": self.install.origin},
        }


def init_project(
    *, directory: Path, cloud: str, project: str, force: bool = False, install_from: str | None = None
) -> InitResult:
    from mlops_infra.backends import get_backend

    get_backend(cloud)
    if not (2 <= len(project) <= 24 and re.fullmatch(SLUG_RE, project)):
        raise UsageError(
            f"invalid project name {project!r}",
            hint="2-24 characters: lowercase letters, digits and single hyphens, starting with a letter",
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    targets = {template: directory / out for template, out in FILES.items()}
    existing = sorted(str(p.relative_to(directory)) for p in targets.values() if p.exists())
    if existing and not force:
        raise UsageError(
            f"{directory} already has {', '.join(existing)}; nothing was written",
            hint="use another directory, or --force to overwrite these files",
        )
    if install_from is not None:
        install = requirement_for(install_from, extra=cloud, version=__version__)
    else:
        install = installed_source(extra=cloud, version=__version__)
    values = {
        "project": project,
        "cloud": cloud,
        "gcp_project": f"{project}-mlops",
        "model": f"{project}-model" if len(project) <= 26 else "model",
        "training_image": f"ghcr.io/acme/{project}-train:0.1.0",
        "version": __version__,
        "install_requirement": install.requirement,
        "install_origin": install.origin,
    }
    rendered = {template: render(f"init/{template}", **values) for template in FILES}
    try:
        for template, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered[template])
    except OSError as exc:
        raise UsageError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    return InitResult(directory=directory, files=sorted(FILES.values()), install=install)
