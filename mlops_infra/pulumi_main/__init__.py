"""The program plain `pulumi up` runs: stack name -> stacks/<stack>.yaml, the same build_program.

Config (optional): `mlops-infra:cloud` picks the cloud (default: the spec's
`cloud:`), `mlops-infra:spec` a spec path other than stacks/<stack>.yaml.
Split specs (`split.enabled`) are deployed with `mlops-infra up` only.
"""

from __future__ import annotations

from pathlib import Path


def run(project_dir: Path | None = None) -> None:
    import pulumi

    from mlops_infra.errors import SpecInvalid
    from mlops_infra.program import build_program
    from mlops_infra.spec.validate import check_file

    config = pulumi.Config("mlops-infra")
    root = project_dir or Path.cwd()
    spec_path = Path(config.get("spec") or root / "stacks" / f"{pulumi.get_stack()}.yaml")
    cloud = config.get("cloud")
    try:
        checked = check_file(spec_path, clouds=[cloud] if cloud else None)
    except SpecInvalid as exc:
        for problem in exc.problems:
            pulumi.log.error(problem.render())
        raise pulumi.RunError(f"{spec_path}: {exc.message}") from None
    cloud = cloud or checked.spec.cloud
    if cloud is None:
        raise pulumi.RunError("no target cloud: set `cloud:` in the spec or `pulumi config set mlops-infra:cloud aws`")
    if checked.spec.split.enabled:
        # A model stack is built from the shapes of what the shared stack hands over, which come
        # from planning the shared part offline: that cannot run inside a live Pulumi program.
        raise pulumi.RunError(
            f"{spec_path} is split into several Pulumi stacks: deploy it with `mlops-infra up` "
            "(it runs the shared stack, then each model stack)"
        )
    build_program(checked.spec, cloud)()
