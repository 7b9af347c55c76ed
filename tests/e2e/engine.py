"""The real Pulumi engine for the e2e tests: Automation API stacks on a local file backend.

Inline programs only (the test process is the language host, so no pulumi-language-python is
needed). State and the passphrase live in a temporary directory; plugin acquisition is disabled,
so a provider missing from the toolchain fails instead of being downloaded.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pulumi
from pulumi import automation as auto

from tests.e2e.toolchain import ROOT, Toolchain

SKIP_AWAIT = "pulumi.com/skipAwait"


def skip_await(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Annotates every Kubernetes object so the provider does not wait for it to become ready.

    No kubelet runs in the local control plane, so workloads never become ready; this belongs to
    the harness, never to the product's programs.
    """
    if not args.type_.startswith("kubernetes:"):
        return None  # the stack, providers, components
    props = dict(args.props)
    metadata = dict(props.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SKIP_AWAIT: "true"}
    props["metadata"] = metadata
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


def with_skip_await(program: Callable[[], None]) -> Callable[[], None]:
    def wrapped() -> None:
        pulumi.runtime.register_resource_transform(skip_await)
        program()

    return wrapped


@dataclass(frozen=True)
class Engine:
    """Makes stacks that share one state directory, one PULUMI_HOME and one passphrase."""

    toolchain: Toolchain | None  # None: the user's own `pulumi` on PATH (real-cluster runs)
    workdir: Path

    @property
    def state_url(self) -> str:
        return f"file://{self.workdir / 'state'}"

    @property
    def pulumi_home(self) -> Path:
        return self.workdir / "pulumi-home"

    def prepare(self) -> None:
        (self.workdir / "state").mkdir(parents=True, exist_ok=True)
        self.pulumi_home.mkdir(parents=True, exist_ok=True)
        if self.toolchain is not None and not (self.pulumi_home / "plugins").exists():
            (self.pulumi_home / "plugins").symlink_to(self.toolchain.plugins, target_is_directory=True)

    def env(self) -> dict[str, str]:
        env = {
            "PULUMI_CONFIG_PASSPHRASE": "e2e-only-passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Dynamic providers run `python -m pulumi.dynamic` through the shim; use this interpreter,
            # and let it import the test modules that define them.
            "PULUMI_PYTHON_CMD": sys.executable,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        if self.toolchain is not None:
            env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
            env["PATH"] = os.pathsep.join([str(self.toolchain.bin), os.environ.get("PATH", "")])
        return env

    def stack(self, *, project: str, stack: str, program: Callable[[], None]) -> auto.Stack:
        self.prepare()
        command = auto.PulumiCommand(root=str(self.toolchain.root)) if self.toolchain is not None else None
        options = auto.LocalWorkspaceOptions(
            pulumi_home=str(self.pulumi_home),
            env_vars=self.env(),
            pulumi_command=command,
            project_settings=auto.ProjectSettings(
                name=project, runtime="python", backend=auto.ProjectBackend(url=self.state_url)
            ),
            secrets_provider="passphrase",
        )
        return auto.create_or_select_stack(
            stack_name=stack, project_name=project, program=with_skip_await(program), opts=options
        )


def resource_types(stack: auto.Stack) -> dict[str, str]:
    """The stack's state: resource name -> type."""
    deployment: dict[str, Any] = stack.export_stack().deployment or {}
    return {r["urn"].rsplit("::", 1)[1]: r["type"] for r in deployment.get("resources", [])}
