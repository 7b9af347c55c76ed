"""Azure explainability: a feature-attribution drift monitor per model; bias and model quality are gaps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.explainability import monitor_name, signal_name, threshold
from mlops_infra.backends.azure.governance_access import groups_access
from mlops_infra.backends.azure.monitoring_rules import signal_name as drift_signal_name
from mlops_infra.stages.storage import capture_prefix
from tests.azure_lifecycle import azure_spec, problems_at
from tests.planning import plan_for, resources_of, spec_from

SCHEDULE = "azure-native:machinelearningservices:Schedule"
BASELINE = {"bucket": "features", "prefix": "churn/baseline/"}
MONITORING = {
    "explainability": {"baseline": BASELINE, "schedule": "weekly", "max_attribution_drift": 0.2},
    "bias": {"facet": "age-band", "label": "churned", "baseline": BASELINE},
}


def data(monitoring: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    raw = azure_spec()
    raw["storage"] = {"buckets": [{"name": "raw"}, {"name": "features"}]}
    raw["models"] = [{
        "name": "churn",
        "serving": {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"},
                    "data_capture": {"sampling_percent": 10}},
        "monitoring": monitoring if monitoring is not None else MONITORING,
    }]
    raw["monitoring"] = {"notify": {"emails": ["oncall@example.com"]}}
    raw.update(copy.deepcopy(changes))
    return raw


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("azure", data())


def test_the_monitor_holds_one_feature_attribution_signal(plan: dict[str, Any]) -> None:
    (monitor,) = [r for r in resources_of(plan, SCHEDULE) if r["stage"] == "explainability"]
    assert monitor["inputs"]["name"] == monitor_name("churn")
    props = monitor["inputs"]["properties"]
    assert props["trigger"]["timeZone"] == "UTC" and props["trigger"]["expression"].count(" ") == 4
    definition = props["action"]["monitorDefinition"]
    assert props["action"]["actionType"] == "CreateMonitor"
    (name,) = definition["signals"]
    signal = definition["signals"][name]
    assert name == signal_name("churn")
    assert signal["signalType"] == "FeatureAttributionDrift"
    assert signal["metricThreshold"] == {"metric": "NormalizedDiscountedCumulativeGain", "threshold": {"value": 0.8}}
    assert signal["featureImportanceSettings"] == {"mode": "Enabled", "targetColumn": "churned"}
    contexts = [d["dataContext"] for d in signal["productionData"]]
    assert contexts == ["model_inputs", "model_outputs"]
    assert all(d["windowSize"] == "P7D" for d in signal["productionData"])
    reference = signal["referenceData"]
    assert reference["jobInputType"] == "mltable" and reference["uri"].endswith("/churn/baseline/")
    assert definition["alertNotificationSettings"]["emailNotificationSettings"]["emails"] == ["oncall@example.com"]
    assert definition["computeConfiguration"]["computeType"] == "ServerlessSpark"
    assert definition["computeConfiguration"]["computeIdentity"]["computeIdentityType"] == "ManagedIdentity"


def test_attribution_breaches_are_not_mistaken_for_drift() -> None:
    # retraining's Event Grid filter selects drift breaches with StringContains on the drift signal name
    for model in ("churn", "a", "churn-2"):
        assert drift_signal_name(model) not in signal_name(model)
        assert signal_name(model) not in drift_signal_name(model)


def test_threshold_is_the_ndcg_below_which_azure_alerts() -> None:
    assert threshold(0.1) == 0.9 and threshold(1.0) == 0.0


def test_the_group_identity_reads_the_captured_traffic_and_the_baseline() -> None:
    spec = spec_from(data())
    namer = BACKEND.namer(spec, spec.settings_for("azure"))
    (access,) = groups_access(spec, namer)
    reads = {p.container: p.prefixes for p in access.reads}
    assert reads[namer.name("azure.storage.container", "features")] == ("churn/baseline/",)
    assert capture_prefix("churn") in reads[namer.name("azure.storage.container", "artifacts")]
    assert not [p for p in access.writes if p.container == namer.name("azure.storage.container", "features")]


def test_private_stacks_provision_spark_for_the_monitor() -> None:
    plan = plan_for("azure", data(governance={"network": "private"}))
    provision = [r for r in plan["resources"] if "managed-network" in r["name"]]
    assert provision, "the managed network is provisioned with serverless Spark"


problems = problems_at


def test_bias_and_model_quality_are_warned_with_the_reason() -> None:
    monitoring = {**MONITORING, "model_quality": {"ground_truth": {"bucket": "raw", "prefix": "truth/"},
                                                  "problem_type": "binary", "metric": "auc", "threshold": 0.7}}
    found = problems(data(monitoring))
    (bias,) = found["models[0].monitoring.bias"]
    assert bias.severity == "warning" and "no bias signal" in bias.message
    (quality,) = found["models[0].monitoring.model_quality"]
    assert quality.severity == "warning" and "preview" in quality.message


def test_what_the_signal_needs_is_located() -> None:
    monitoring = {"explainability": MONITORING["explainability"]}
    raw = data(monitoring)
    raw["models"][0]["serving"]["data_capture"]["capture_responses"] = False
    raw["monitoring"]["notify"]["webhook"] = "https://hooks.example.com/x"
    found = problems(raw)
    messages = {p.severity + ": " + p.message for p in found["models[0].monitoring.explainability"]}
    assert any(m.startswith("error: ") and "captured responses" in m for m in messages)
    assert any(m.startswith("warning: ") and "target" in m for m in messages)  # no bias.label to name it
    assert any(m.startswith("warning: ") and "webhook" in m for m in messages)
    assert found["models[0].monitoring.explainability.baseline"][0].severity == "warning"
