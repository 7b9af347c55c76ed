"""What a reviewer reads in a plan diff: old and new values, replacements, protected deletes, Markdown."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.backends import registry
from mlops_infra.cli import main
from mlops_infra.diff import diff_plans, render_changes
from mlops_infra.diff_markdown import MARKER, MAX_CHARS, MarkdownSection, render_markdown
from mlops_infra.plan import dump_plan, plan_document
from mlops_infra.replacement import judge
from mlops_infra.spec.models import spec_model
from tests.planning import CLOUDS, example_plan, lifecycle_edit

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())


def plan(cloud: str, data: dict[str, Any]) -> dict[str, Any]:
    return plan_document(spec_model().model_validate(data), cloud, stack="dev")


def changed(**edits: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEV)
    if "lifecycle" in edits:
        field, value = edits["lifecycle"]
        data["storage"]["buckets"][0][field] = value
    if "serving_image" in edits:
        data["models"][0]["serving"]["image"] = edits["serving_image"]
    if "extra_bucket" in edits:
        data["storage"]["buckets"].append({"name": edits["extra_bucket"]})
    return data


@pytest.fixture(scope="module", params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def base(cloud: str) -> dict[str, Any]:
    return example_plan("dev", cloud)


def test_an_update_carries_old_and_new_values(cloud: str, base: dict[str, Any]) -> None:
    field, old, new = lifecycle_edit(cloud)
    changes = diff_plans(base, plan(cloud, changed(lifecycle=(field, new))))
    values = [v for u in changes.update for v in u.values]
    assert values and all(v.path.startswith("inputs.") for v in values)
    assert any(str(old) in json.dumps(v.old) and str(new) in json.dumps(v.new) for v in values), values
    as_json = changes.to_dict()["update"]
    assert all(len(u["values"]) == len(u["paths"]) for u in as_json)
    assert any("old" in v and "new" in v for u in as_json for v in u["values"])
    assert "-> " in render_changes(changes)


def test_a_removed_bucket_is_a_blocked_protected_delete(cloud: str, base: dict[str, Any]) -> None:
    bigger = plan(cloud, changed(extra_bucket="features"))
    document = diff_plans(bigger, base).to_dict()
    (bucket,) = [d for d in document["delete"] if d["name"] == "storage-bucket-features"]
    assert bucket["protected"] is True and bucket["blocked"] is True
    assert bucket["holds_data"] is True and bucket["data_loss"] is True and bucket["holds"]
    assert "pulumi state unprotect" in bucket["blocked_reason"]
    assert document["summary"]["blocked"] >= 1 and document["summary"]["data_loss"] >= 1
    markdown = render_markdown(diff_plans(bigger, base), document=base)
    blocked_section = markdown.split("#### Blocked or deleting data", 1)[1].split("#### Other changes", 1)[0]
    assert "⛔ ⚠️ **delete** `storage-bucket-features`" in blocked_section
    assert "`up` refuses to delete or replace a protected resource" in blocked_section


def test_a_new_serving_image_marks_the_replacements(cloud: str, base: dict[str, Any]) -> None:
    image = DEV["models"][0]["serving"]["image"].rsplit(":", 1)[0] + ":9.9.9"
    changes = diff_plans(base, plan(cloud, changed(serving_image=image)))
    replaced = [u for u in changes.update if u.replace]
    if not replaced:
        # A cloud that rolls a new image out in place (KServe: a new revision of the same InferenceService):
        # the model's endpoint is still updated, and its facts, not the diff, are what say "in place".
        facts = registry()[cloud].resource_facts()
        endpoints = [u for u in changes.update if u.model == "churn-classifier"]
        assert endpoints, render_changes(changes)
        assert all(not judge(facts, u.type, u.paths).replace for u in endpoints)
        assert all(u.type in facts.types for u in endpoints), "facts of the endpoint's type"
        return
    for update in replaced:
        assert update.verdict.reason and update.model == "churn-classifier"
        assert update.to_dict()["replace"] is True
    markdown = render_markdown(changes, document=base)
    assert "**replace** `" + replaced[0].name + "`" in markdown
    assert "| churn-classifier |" in markdown  # the summary table has a row per stage and model


def test_the_cli_prints_json_and_markdown_for_the_same_diff(
    cloud: str, base: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(yaml.safe_dump(DEV))
    (tmp_path / "base.json").write_text(dump_plan(plan(cloud, changed(extra_bucket="features"))))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    as_json = runner.invoke(main, ["plan", "--cloud", cloud, "--against", "base.json", "--json", "-q"])
    assert as_json.exit_code == 0, as_json.stderr
    delete = json.loads(as_json.stdout)["changes"]["delete"]
    assert any(d["protected"] and d["blocked"] for d in delete)
    markdown = runner.invoke(main, ["plan", "--cloud", cloud, "--against", "base.json", "--format", "markdown", "-q"])
    assert markdown.exit_code == 0 and markdown.stdout.startswith(MARKER)
    assert "⛔" in markdown.stdout and "protected" in markdown.stdout and markdown.stderr == ""


def test_markdown_needs_against_and_disagrees_with_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(yaml.safe_dump(DEV))
    monkeypatch.chdir(tmp_path)
    alone = CliRunner().invoke(main, ["plan", "--format", "markdown"])
    assert alone.exit_code == 2 and "needs --against" in alone.stderr
    both = CliRunner().invoke(main, ["plan", "--format", "markdown", "--json"])
    assert both.exit_code == 2 and "disagree" in both.stderr


def doc(*resources: dict[str, Any], cloud: str = "aws") -> dict[str, Any]:
    return {"format": "mlops-infra/plan/v1", "project": "p", "stack": "dev", "cloud": cloud, "resources": list(resources)}


def resource(name: str, type_: str, protect: bool = False, **inputs: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "stage": "serving", "protect": protect, "inputs": inputs}


def test_secrets_are_masked_and_long_values_cut_only_in_text() -> None:
    long_old, long_new = "a" * 300 + "x", "a" * 300 + "y"
    old = doc(resource("m", "aws:sagemaker/model:Model", primaryContainer={"environment": {"API_TOKEN": "s3cr3t", "NOTE": long_old}}))
    new = doc(resource("m", "aws:sagemaker/model:Model", primaryContainer={"environment": {"API_TOKEN": "other", "NOTE": long_new}}))
    changes = diff_plans(old, new)
    values = {v["path"]: v for v in changes.to_dict()["update"][0]["values"]}
    token = values["inputs.primaryContainer.environment.API_TOKEN"]
    assert token == {"path": "inputs.primaryContainer.environment.API_TOKEN", "old": "[secret]", "new": "[secret]"}
    assert values["inputs.primaryContainer.environment.NOTE"]["new"] == long_new  # whole in JSON
    text = render_changes(changes)
    assert "s3cr3t" not in text and "other" not in text and long_new not in text
    assert "(303 chars)" in text and 'x"' in text and 'y"' in text  # cut around the difference


def test_added_and_removed_keys_have_one_side() -> None:
    old = doc(resource("t", "aws:sns/topic:Topic", displayName="a"))
    new = doc(resource("t", "aws:sns/topic:Topic", kmsMasterKeyId="k"))
    values = diff_plans(old, new).to_dict()["update"][0]["values"]
    assert values == [{"path": "inputs.displayName", "old": "a"}, {"path": "inputs.kmsMasterKeyId", "new": "k"}]


@pytest.mark.parametrize(
    ("type_", "inputs_old", "inputs_new", "replace"),
    [
        ("aws:s3/bucket:Bucket", {"bucket": "a"}, {"bucket": "b"}, True),  # the name: the neutral rule
        ("aws:sagemaker/model:Model", {"executionRoleArn": "a"}, {"executionRoleArn": "b"}, True),  # no update API
        ("aws:sagemaker/model:Model", {"tags": {"a": "1"}}, {"tags": {"a": "2"}}, False),  # tags change in place
        ("aws:appautoscaling/target:Target", {"maxCapacity": 2}, {"maxCapacity": 4}, False),
        ("aws:sagemaker/endpoint:Endpoint", {"deploymentConfig": {"autoRollbackConfiguration": {"alarms": []}}},
         {"deploymentConfig": {"autoRollbackConfiguration": {"alarms": [{"alarmName": "x"}]}}}, True),
        ("aws:kms/key:Key", {"customerMasterKeySpec": "a"}, {"customerMasterKeySpec": "b"}, None),  # not in the facts
        ("aws:made/up:Thing", {"x": 1}, {"x": 2}, None),  # an unknown type: never guessed
    ],
)
def test_replacement_comes_from_the_facts_or_is_unknown(type_: str, inputs_old: dict, inputs_new: dict, replace: Any) -> None:
    (update,) = diff_plans(doc(resource("r", type_, **inputs_old)), doc(resource("r", type_, **inputs_new))).update
    assert update.replace is replace, update.verdict
    if replace is None:
        assert "preview" in update.verdict.reason


def test_a_protected_resource_that_may_be_replaced_is_flagged_uncertain() -> None:
    old = doc(resource("k", "aws:kms/key:Key", protect=True, customerMasterKeySpec="a"))
    new = doc(resource("k", "aws:kms/key:Key", protect=True, customerMasterKeySpec="b"))
    (update,) = diff_plans(old, new).update
    assert update.to_dict()["protected"] is True and update.blocked is None and update.to_dict()["blocked"] is None
    assert "if it is replaced, `up` refuses" in render_markdown(diff_plans(old, new), document=new)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_type_the_examples_create_has_facts(cloud: str) -> None:
    facts = registry()[cloud].resource_facts()
    types = {
        r["type"]
        for stack in ("dev", "prod")
        for r in example_plan(stack, cloud)["resources"]
        if r["custom"] and not r["type"].startswith("pulumi:providers:")
    }
    assert types - set(facts.types) == set()
    assert set(facts.holds_data) <= set(facts.types)


def test_dynamic_provider_facts_match_their_code() -> None:
    from mlops_infra.backends.azure import traffic
    from mlops_infra.backends.gcp import deployed_model

    gcp = registry()["gcp"].resource_facts().types["pulumi-python:dynamic/mlops-infra-gcp:DeployedModel"]
    assert gcp.replace == deployed_model.REPLACE_KEYS and gcp.in_place == set(deployed_model.UPDATE_KEYS)
    azure = registry()["azure"].resource_facts().types["pulumi-python:dynamic/mlops-infra-azure:EndpointTraffic"]
    assert azure.replace == traffic.REPLACE_ON and azure.in_place == set(traffic.UPDATE_ON) - set(traffic.REPLACE_ON)


def test_markdown_puts_blocked_first_adds_sections_and_stays_under_githubs_limit() -> None:
    many = [resource(f"alarm-{i:04d}", "aws:cloudwatch/metricAlarm:MetricAlarm", threshold=i) for i in range(3000)]
    old = doc(*many, resource("bucket", "aws:s3/bucket:Bucket", protect=True, bucket="b"))
    new = doc(*[dict(r, inputs={"threshold": r["inputs"]["threshold"] + 1}) for r in many])
    cost = MarkdownSection("Monthly cost delta", "| | USD |\n|---|---:|\n| total | +12.00 |")
    text = render_markdown(diff_plans(old, new), document=new, sections=[cost])
    assert len(text) < MAX_CHARS + 2_000
    assert text.index("| stage | model |") < text.index("#### Monthly cost delta") < text.index("#### Blocked")
    assert text.index("`bucket`") < text.index("`alarm-0000`")
    assert "more changes are not shown here" in text


def test_plan_names_the_model_of_per_model_resources() -> None:
    document = example_plan("prod", "aws")
    models = {r["name"]: r.get("model") for r in document["resources"]}
    assert models["serving-endpoint-churn-classifier"] == "churn-classifier"
    assert models["serving-endpoint-ltv-regressor"] == "ltv-regressor"
    assert models["storage-bucket-raw"] is None and models["monitoring-dashboard"] is None
