"""Dynamic providers (pulumi.dynamic) run with the toolchain's CLI.

The engine starts them through the `pulumi-resource-pulumi-python` shim script that
toolchain/build.sh installs beside the CLI (it ships in the sdk Go module); the shim runs
`python -m pulumi.dynamic` with PULUMI_PYTHON_CMD, which unpickles the provider by reference.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic
import pytest

from tests.e2e.engine import Engine, resource_types

pytestmark = pytest.mark.e2e


class Doubler(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=f"doubled-{props['value']}", outs={"value": props["value"] * 2})


class Doubled(pulumi.dynamic.Resource):
    value: pulumi.Output[int]

    def __init__(self, name: str, *, value: int) -> None:
        super().__init__(Doubler(), name, {"value": value})


def program() -> None:
    pulumi.export("value", Doubled("doubled", value=21).value)


def test_dynamic_resource_goes_up_and_down(engine: Engine) -> None:
    stack = engine.stack(project="mlops-e2e-dynamic", stack="dynamic", program=program)
    up = stack.up()
    assert up.outputs["value"].value == 42
    assert resource_types(stack)["doubled"] == "pulumi-python:dynamic:Resource"
    stack.destroy()
    assert "doubled" not in resource_types(stack)
    stack.workspace.remove_stack("dynamic")
