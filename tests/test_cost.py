"""`mlops-infra cost`: the estimate, its price books, usage assumptions and --against."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_infra.cli import main
from mlops_infra.cost.estimate import estimate
from mlops_infra.cost.prices import HOURS_PER_MONTH, parse_book, price_book
from mlops_infra.cost.usage import scheduled_runs_per_month
from mlops_infra.errors import InternalError
from mlops_infra.plan import plan_document
from tests.planning import BASE_SPEC, ROOT, example_plan, spec_from

STACKS = sorted(p.stem for p in (ROOT / "stacks").glob("*.yaml"))
CLOUDS = ["aws", "gcp", "azure"]
# The price tables hold no westeurope figure yet (see backends/azure/prices.json): every Azure
# example prices at zero, which this test reports instead of hiding.
NO_PRICES_READ = {"azure": "no Azure price for westeurope is read yet"}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_example_has_a_positive_sourced_total(stack: str, cloud: str, request: pytest.FixtureRequest) -> None:
    if cloud in NO_PRICES_READ:
        request.applymarker(pytest.mark.xfail(reason=NO_PRICES_READ[cloud], strict=True))
    result = CliRunner().invoke(main, ["cost", "--spec", str(ROOT / "stacks" / f"{stack}.yaml"), "--cloud", cloud, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == "mlops-infra/cost/v1" and document["currency"] == "USD"
    assert {"by_stage", "by_model", "resources", "unpriced", "prices"} <= set(document)
    assert document["monthly_total"] > 0
    for table in document["prices"]:
        assert table["source"].startswith("https://") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", table["as_of"])


def _served(cloud: str, replicas: int, **cloud_settings: object) -> dict:
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"][cloud].update(cloud_settings)
    data["models"] = [
        {
            "name": "churn",
            "serving": {
                "image": "ghcr.io/acme/serve:1.0",
                "compute": {"size": "cpu-medium"},
                "autoscaling": {"min_replicas": replicas, "max_replicas": 8},
            },
        }
    ]
    return data


# Where each cloud's serving table has a price for the catalog's cpu-medium choice.
PRICED_SERVING = {
    "aws": ({"region": "us-east-1"}, "sagemaker-hosting"),
    "gcp": ({"region": "us-central1"}, "vertex-prediction"),
    "azure": ({"location": "eastus"}, "azure-vm"),
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_one_more_replica_costs_one_instance_month(cloud: str, request: pytest.FixtureRequest) -> None:
    if cloud == "gcp":
        request.applymarker(pytest.mark.xfail(reason="no Vertex AI prediction price is read yet", strict=True))
    settings, table_id = PRICED_SERVING[cloud]
    totals, skus = [], []
    for replicas in (1, 2):
        spec = spec_from(_served(cloud, replicas, **settings))
        result = estimate(spec=spec, cloud=cloud, document=plan_document(spec, cloud, stack="dev"))
        totals.append(result.model_total("churn"))
        skus += [i.sku for i in result.items if i.model == "churn" and i.table == table_id]
    assert skus, "the endpoint's instances were not priced"
    region = next(iter(settings.values()))
    price = price_book(cloud).table(table_id).price(str(region), skus[0])
    assert price is not None and totals[1] - totals[0] == price * HOURS_PER_MONTH


def test_unpriced_resources_are_listed_and_never_counted() -> None:
    document = example_plan("dev", "aws")
    spec = spec_from(_served("aws", 1, region="eu-west-1"))
    base = estimate(spec=spec, cloud="aws", document=document)
    unknown = {"name": "mystery", "type": "aws:newservice/thing:Thing", "stage": "storage", "custom": True, "inputs": {}}
    more = estimate(spec=spec, cloud="aws", document={**document, "resources": document["resources"] + [unknown]})
    assert more.total() == base.total()
    assert [u.name for u in more.unpriced if u.type == "aws:newservice/thing:Thing"] == ["mystery"]
    # A SKU missing from a table (the example's us-east-1 plan priced in eu-west-1) is unpriced too.
    reasons = [u.reason for u in base.unpriced if u.name == "serving-config-churn-classifier"]
    assert reasons == ["sagemaker-hosting has no price for ml.m5.large in eu-west-1"]
    assert all(i.name != "serving-config-churn-classifier" for i in base.items)


def test_usage_is_kept_apart_and_follows_the_schedule_and_assumptions() -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"]["gcp"]["overrides"] = {"models": {"churn": {"training_machine_type": "n1-standard-4"}}}
    data["models"] = [
        {
            "name": "churn",
            "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-medium"}, "max_runtime": "2h"},
            "retraining": {"schedule": "0 3 * * 1"},
        }
    ]
    data["estimate"] = {"storage_gb": 10, "extra_training_runs_per_month": 2}
    spec = spec_from(data)
    result = estimate(spec=spec, cloud="gcp", document=plan_document(spec, "gcp", stack="dev"))
    runs = [i for i in result.items if i.name == "training-runs-churn"]
    assert len(runs) == 1 and runs[0].kind == "usage"
    expected_runs = scheduled_runs_per_month("0 3 * * 1") + 2
    assert runs[0].quantity == expected_runs * 2
    assert round(runs[0].monthly, 6) == round(Decimal("0.21849885") * expected_runs * 2, 6)
    assert result.total("usage") == runs[0].monthly  # storage has no GCS price yet: unpriced, not zero-priced
    assert {u.name for u in result.unpriced if u.kind == "usage"} >= {"storage-raw", "storage-artifacts"}
    assert "estimate.storage_gb" in result.assumptions["storage"] and "10" in result.assumptions["storage"]


def test_runs_per_month_of_common_schedules() -> None:
    assert scheduled_runs_per_month("0 2 * * *") == Decimal(365) / 12
    assert scheduled_runs_per_month("0 3 * * 1") == Decimal(52) / 12  # 2025 has 52 Mondays
    assert scheduled_runs_per_month("30 4 1 * *") == 1
    assert scheduled_runs_per_month("0 * * * *") == Decimal(365 * 24) / 12


def test_against_prints_the_delta(tmp_path: Path) -> None:
    old_spec, new_spec = tmp_path / "old.yaml", tmp_path / "new.yaml"
    text = (ROOT / "stacks" / "dev.yaml").read_text()
    old_spec.write_text(text)
    new_spec.write_text(text.replace("min_replicas: 1,", "min_replicas: 3,"))
    runner = CliRunner()
    old = runner.invoke(main, ["cost", "--spec", str(old_spec), "--cloud", "aws", "--json"])
    (tmp_path / "old.json").write_text(old.stdout)
    args = ["cost", "--spec", str(new_spec), "--cloud", "aws", "--against", str(tmp_path / "old.json")]
    new = runner.invoke(main, [*args, "--json"])
    delta = json.loads(new.stdout)["delta"]
    assert delta["monthly_total"] == delta["by_model"]["churn-classifier"] == round(2 * 0.115 * 730, 2)
    text_run = runner.invoke(main, args)
    assert "+167.9" in text_run.stdout
    wrong = runner.invoke(main, [*args[:-2], "--against", str(old_spec)])
    assert wrong.exit_code == 2 and "not JSON" in wrong.stderr


def test_every_price_book_names_its_sources() -> None:
    for cloud in CLOUDS:
        book = price_book(cloud)
        assert book.tables and book.meters
        for table in book.tables.values():
            assert table.source.startswith("https://") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.as_of)
        assert not set(book.no_charge) & set(book.meters), "a metered type cannot also be free"


def test_a_malformed_price_book_is_refused() -> None:
    with pytest.raises(InternalError, match="unknown table"):
        parse_book("x", {"region_setting": "region", "meters": [{"type": "t", "table": "missing", "sku": "=a"}]})
    with pytest.raises(InternalError, match="source"):
        parse_book("x", {"region_setting": "region", "tables": {"t": {"service": "s", "unit": "hour", "as_of": "2026-01-01"}}})
