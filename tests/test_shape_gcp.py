"""The GCP backend in the house's shape: each stage module holds its build and its checks, what
GCP cannot do is data (GcpBackend.gaps) that validate reports, and stages wire to each other by
type (backends/gcp/shared.py), never by string keys."""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_infra.backends import registry
from mlops_infra.backends.gcp import BACKEND
from mlops_infra.stages import all_stages
from tests.planning import BASE_SPEC, spec_from

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlops_infra" / "backends" / "gcp"
IMAGE = "us-docker.pkg.dev/acme/churn/train:1.0"


def _data(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data.update(copy.deepcopy(changes))
    return data


def _problems(**changes: Any) -> list:
    spec = spec_from(_data(**changes))
    return BACKEND.check(spec, spec.settings_for("gcp"))


def test_validating_for_gcp_loads_neither_pulumi_nor_its_sdk() -> None:
    """Every stage module's check runs at validate: their SDK imports live inside functions."""
    code = (
        "import sys\n"
        "from mlops_infra.spec.validate import check_file\n"
        "check_file('stacks/prod.yaml', clouds=['gcp'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'google'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_every_stage_module_checks_what_it_builds_and_the_backend_holds_no_stage_checks() -> None:
    for stage in all_stages():
        if not BACKEND.supports(stage.name):
            continue  # declared unsupported, with its reason (tests/test_contract.py)
        module = BACKEND.stage_module(stage.name)
        assert callable(getattr(module, "check", None)), f"{stage.name} has no check(spec, settings)"
        assert callable(getattr(module, "build", None))
    backend = ast.parse((PACKAGE / "backend.py").read_text())
    methods = {n.name for c in backend.body if isinstance(c, ast.ClassDef) for n in c.body if isinstance(n, ast.FunctionDef)}
    assert not {m for m in methods if m.startswith("_check")}, "stage checks belong in the stage modules"


def test_stage_modules_wire_by_type_only() -> None:
    """No ctx.upstream["stage"], .get("stage"), GovernanceOutputs.extra or ctx.handoff in the backend."""
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and _is_attr(node.value, "upstream"):
                pytest.fail(f"{path.name}:{node.lineno}: ctx.upstream[...] (use .of / .find)")
            if isinstance(node, ast.Attribute) and node.attr in ("handoff", "extra"):
                pytest.fail(f"{path.name}:{node.lineno}: .{node.attr} (use a typed shared value)")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and _is_attr(node.func.value, "upstream"):
                pytest.fail(f"{path.name}:{node.lineno}: ctx.upstream.get(...) (use .find)")


def _is_attr(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == name


def _model(**sections: Any) -> dict[str, Any]:
    return {"name": "churn", **sections}


SERVING = {"image": IMAGE, "compute": {"size": "cpu-small"}}
# A spec per gap that asks for exactly that feature, and where validate must report it.
GAP_SPECS: dict[str, tuple[dict[str, Any], tuple]] = {
    "tracking.size": ({"tracking": {"enabled": True, "size": "large"}}, ("tracking", "size")),
    "models[].training.run_on_deploy": (
        {"models": [_model(training={"image": IMAGE, "compute": {"size": "cpu-small"}, "run_on_deploy": True},
                           registry={"approval": "automatic"}, serving=SERVING)]},
        ("models", 0, "training", "run_on_deploy"),
    ),
    "models[].registry (without training)": (
        {"models": [_model(registry={"approval": "automatic"}, serving={**SERVING, "model_uri": "models/churn/"})]},
        ("models", 0, "registry"),
    ),
    "models[].serving.model_uri (outside Cloud Storage)": (
        {"models": [_model(serving={**SERVING, "model_uri": "s3://elsewhere/model.tar.gz"})]},
        ("models", 0, "serving", "model_uri"),
    ),
    "models[].serving.data_capture.capture_responses": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "data_capture": {"capture_responses": False}})]},
        ("models", 0, "serving", "data_capture", "capture_responses"),
    ),
    "models[].serving.autoscaling.scale_in_cooldown": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "autoscaling": {"scale_in_cooldown": 600}})]},
        ("models", 0, "serving", "autoscaling", "scale_in_cooldown"),
    ),
    "models[].serving.autoscaling.scale_out_cooldown": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "autoscaling": {"scale_out_cooldown": 60}})]},
        ("models", 0, "serving", "autoscaling", "scale_out_cooldown"),
    ),
    "models[].serving.rollout.rollback_on_alarms": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "rollout": {"mode": "canary", "canary_percent": 10},
                                                  "autoscaling": {"max_replicas": 2}})]},
        ("models", 0, "serving", "rollout", "rollback_on_alarms"),
    ),
    "models[].serving.shadow": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "shadow": {"image": IMAGE, "traffic_percent": 10}})]},
        ("models", 0, "serving", "shadow"),
    ),
    "models[].serving.auth.key": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "auth": "key"})]},
        ("models", 0, "serving", "auth"),
    ),
    "models[].batch (private network)": (
        {"governance": {"network": "private"}, "monitoring": {"notify": {"emails": ["ml@example.com"]}},
         "models": [_model(serving={**SERVING, "model_uri": "m/"},
                           batch={"input": {"bucket": "raw", "prefix": "in/"}, "output": {"bucket": "raw", "prefix": "out/"},
                                  "schedule": "0 2 * * *", "compute": {"size": "cpu-small"}, "model_uri": "m/"})]},
        ("models", 0, "batch"),
    ),
    "feature_store.groups[].source": (
        {"feature_store": {"groups": [{
            "name": "customers", "record_id": "customer-id", "event_time": "event-time",
            "source": {"bucket": "raw", "prefix": "customers/"},
            "features": [{"name": "customer-id", "type": "string"}, {"name": "event-time", "type": "timestamp"}],
        }]}},
        ("feature_store", "groups", 0, "source"),
    ),
    "models[].monitoring.bias": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "data_capture": {"sampling_percent": 10}},
                           monitoring={"bias": {"facet": "age-band", "label": "churned", "baseline": {"bucket": "raw"}}})]},
        ("models", 0, "monitoring", "bias"),
    ),
    "models[].monitoring.model_quality": (
        {"models": [_model(serving={**SERVING, "model_uri": "m/", "data_capture": {"sampling_percent": 10}},
                           monitoring={"model_quality": {"ground_truth": {"bucket": "raw"}, "problem_type": "binary",
                                                         "metric": "auc", "threshold": 0.7}})]},
        ("models", 0, "monitoring", "model_quality"),
    ),
}


def test_every_gap_has_a_spec_that_shows_it() -> None:
    assert set(GAP_SPECS) | NETWORK_GAPS | MODE_GAPS == set(BACKEND.gaps)


@pytest.mark.parametrize("feature", sorted(GAP_SPECS))
def test_validate_reports_each_gap_with_its_data(feature: str) -> None:
    changes, path = GAP_SPECS[feature]
    found = [p for p in _problems(**changes) if p.path == path]
    gap = BACKEND.gaps[feature]
    assert len(found) == 1, (feature, [p.path for p in _problems(**changes)])
    assert found[0].message == gap.reason and found[0].severity == gap.severity
    assert found[0].hint


# Gaps of the private network (backends/gcp/governance_network.py), tested in tests/test_network_gcp.py.
NETWORK_GAPS = {
    "governance.network: private (VPC Service Controls)",
    "clouds.gcp.network.network (another project's network)",
}
# Serving modes Vertex AI lacks: the neutral check words them (tests/test_serving_modes_gcp.py).
MODE_GAPS = {"models[].serving.mode.serverless", "models[].serving.mode.async"}
