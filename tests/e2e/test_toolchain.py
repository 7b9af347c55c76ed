"""The toolchain's pins agree with each other, and an unbuilt toolchain is reported, not guessed.

These run without Go or the toolchain (no `e2e` mark): they read toolchain/ and pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.e2e.toolchain import ROOT, locate, pins

MODULES = ROOT / "toolchain" / "modules"


def selected(component: str, module: str) -> str:
    """The version a scratch module's go.mod selects for `module`: its replace, else its require."""
    text = (MODULES / component / "go.mod").read_text()
    name = re.escape(module)
    replaced = re.search(rf"^\s*(?:replace\s+)?{name}\s+=>\s+\S+\s+(\S+)\s*$", text, re.M)
    if replaced:
        return replaced.group(1)
    required = re.search(rf"^\s*(?:require\s+)?{name}\s+(v\S+)", text, re.M)
    assert required, f"toolchain/modules/{component}/go.mod does not require {module}"
    return required.group(1)


def test_each_scratch_module_builds_the_pinned_version() -> None:
    pin = pins()
    assert selected("pulumi", "github.com/pulumi/pulumi/pkg/v3") == f"v{pin['PULUMI_VERSION']}"
    assert selected("pulumi", "github.com/pulumi/pulumi/sdk/v3") == f"v{pin['PULUMI_VERSION']}"
    provider = "github.com/pulumi/pulumi-kubernetes/provider/v4"
    assert selected("pulumi-kubernetes", provider) == pin["PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"]
    sdk = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
    assert selected("pulumi-kubernetes", sdk) == f"v{pin['PULUMI_KUBERNETES_VERSION']}"
    assert selected("etcd", "go.etcd.io/etcd/server/v3") == f"v{pin['ETCD_VERSION']}"
    assert pin["ETCD_VERSION"].startswith("3.6.")
    assert selected("kubernetes", "k8s.io/kubernetes") == f"v{pin['KUBERNETES_VERSION']}"


def test_every_kubernetes_staging_module_is_replaced_with_the_same_release() -> None:
    text = (MODULES / "kubernetes" / "go.mod").read_text()
    staging = "v0." + pins()["KUBERNETES_VERSION"].removeprefix("1.")
    replaces = dict(re.findall(r"^\s*(k8s\.io/\S+) => k8s\.io/\S+ (\S+)\s*$", text, re.M))
    assert len(replaces) > 20, "k8s.io/kubernetes needs a replace for each of its staging modules"
    assert {module: version for module, version in replaces.items() if version != staging} == {}


def test_the_kubernetes_extra_matches_the_provider_the_toolchain_builds() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["kubernetes"]
    assert extra == [f"pulumi-kubernetes=={pins()['PULUMI_KUBERNETES_VERSION']}"]


def test_an_unbuilt_toolchain_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_INFRA_TOOLCHAIN_DIR", str(tmp_path / "toolchain"))
    toolchain, why_not = locate()
    assert toolchain.root == tmp_path / "toolchain"
    assert why_not == (
        f"toolchain in {tmp_path / 'toolchain'} is missing: pulumi pulumi-kubernetes etcd kubernetes crds"
        " (run toolchain/build.sh)"
    )


def test_a_component_built_from_another_recipe_counts_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    (stamps / "etcd").write_text("etcd=3.4.23\n")  # an older pin
    monkeypatch.setenv("MLOPS_INFRA_TOOLCHAIN_DIR", str(tmp_path))
    _, why_not = locate()
    assert why_not is not None and "missing: pulumi pulumi-kubernetes etcd kubernetes crds" in why_not
