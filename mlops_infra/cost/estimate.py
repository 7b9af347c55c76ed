"""The monthly estimate of a plan: always-on resources priced from their inputs, usage apart.

Always-on: every plan resource whose type has a meter in the cloud's price book (endpoint
replicas at min_replicas, tracking servers, keys, registries ...), for a whole month.
Usage: what the plan cannot see running, from the spec and its stated assumptions: scheduled
training runs at max_runtime each, and bucket storage at `estimate.storage_gb` per bucket.
A resource with neither a meter nor a known absence of charge is listed as unpriced, and a
SKU missing from its table too: neither is ever counted as free.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mlops_infra.cost.prices import HOURS_PER_MONTH, Meter, PriceBook, price_book
from mlops_infra.cost.usage import scheduled_runs_per_month

COST_FORMAT = "mlops-infra/cost/v1"
UNKNOWN = "(known after apply)"
# Stages whose resources belong to one model (their logical names end with the model's name).
MODEL_STAGES = frozenset({"training", "registry", "serving", "monitoring", "retraining", "batch", "explainability"})


@dataclass(frozen=True)
class Item:
    name: str
    type: str
    stage: str | None
    model: str | None
    kind: str  # "always_on" or "usage"
    sku: str
    quantity: Decimal  # instances (always on), instance-hours or GB (usage)
    unit: str
    unit_price: Decimal
    monthly: Decimal
    table: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "type": self.type,
            "stage": self.stage,
            "model": self.model,
            "kind": self.kind,
            "sku": self.sku,
            "quantity": _number(self.quantity, 4),
            "unit": self.unit,
            "unit_price": _number(self.unit_price, 6),
            "monthly": _number(self.monthly, 2),
            "price": self.table,
        }
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass(frozen=True)
class Unpriced:
    name: str
    type: str
    stage: str | None
    model: str | None
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "type", "stage", "model", "kind", "reason")}


@dataclass
class Estimate:
    cloud: str
    region: str
    book: PriceBook
    items: list[Item] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    no_charge: int = 0
    assumptions: dict[str, Any] = field(default_factory=dict)

    def total(self, kind: str | None = None) -> Decimal:
        return sum((i.monthly for i in self.items if kind in (None, i.kind)), Decimal(0))

    def model_total(self, model: str) -> Decimal:
        return sum((i.monthly for i in self.items if i.model == model), Decimal(0))

    def to_dict(self, *, project: str, stack: str) -> dict[str, Any]:
        by_stage: dict[str, Decimal] = {}
        by_model: dict[str, Decimal] = {}
        for item in self.items:
            stage = item.stage or "other"
            by_stage[stage] = by_stage.get(stage, Decimal(0)) + item.monthly
            if item.model:
                by_model[item.model] = by_model.get(item.model, Decimal(0)) + item.monthly
        used = sorted({i.table for i in self.items})
        return {
            "format": COST_FORMAT,
            "project": project,
            "stack": stack,
            "cloud": self.cloud,
            "region": self.region,
            "currency": self.book.currency,
            "monthly_total": _number(self.total(), 2),
            "always_on": _number(self.total("always_on"), 2),
            "usage": _number(self.total("usage"), 2),
            "by_stage": {k: _number(v, 2) for k, v in sorted(by_stage.items())},
            "by_model": {k: _number(v, 2) for k, v in sorted(by_model.items())},
            "resources": [i.to_dict() for i in self.items],
            "unpriced": [u.to_dict() for u in self.unpriced],
            "no_charge_resources": self.no_charge,
            "assumptions": self.assumptions,
            "prices": [self.book.table(t).describe() for t in used],
        }


def estimate(*, spec: Any, cloud: str, document: dict[str, Any]) -> Estimate:
    """Price a plan document (and the spec's usage) with the cloud's price book."""
    book = price_book(cloud)
    settings = spec.settings_for(cloud)
    region = str(getattr(settings, book.region_setting))
    models = sorted((m.name for m in spec.models), key=len, reverse=True)
    result = Estimate(cloud=cloud, region=region, book=book)
    for resource in document["resources"]:
        if not resource.get("custom", True) or resource.get("stage") == "provider":
            continue  # components and providers are bookkeeping, not cloud resources
        model = model_of(resource["name"], resource.get("stage"), models)
        meters = book.meters.get(resource["type"])
        if meters:
            for meter in meters:
                _meter(result, resource, meter, model)
        elif resource["type"] in book.no_charge:
            result.no_charge += 1
        else:
            billed_by_use = book.usage_only.get(resource["type"])
            kind, reason = (
                ("usage", f"billed by use ({billed_by_use}): not estimated")
                if billed_by_use
                else ("always_on", "no price for this resource type in the price book")
            )
            base = {"name": resource["name"], "type": resource["type"], "stage": resource.get("stage")}
            result.unpriced.append(Unpriced(**base, model=model, kind=kind, reason=reason))
    _training(result, spec, settings)
    _storage(result, spec)
    return result


def model_of(name: str, stage: str | None, models: list[str]) -> str | None:
    """The model a resource belongs to: its logical name ends with the model's name.

    `models` is sorted longest first, so 'churn' never claims a resource of 'churn-v2'.
    """
    if stage not in MODEL_STAGES:
        return None
    return next((m for m in models if name == m or name.endswith(f"-{m}")), None)


def _meter(result: Estimate, resource: dict[str, Any], meter: Meter, model: str | None) -> None:
    table = result.book.table(meter.table)
    inputs = resource.get("inputs", {})
    items = value_at(inputs, meter.each) if meter.each else [inputs]
    for item in items if isinstance(items, list) else []:
        sku = _resolve(item, meter.sku)
        if sku is None:
            continue  # an optional part the resource does not have (no accelerator)
        count = _resolve(item, meter.count) if meter.count else 1
        if meter.multiplier and isinstance(count, (int, Decimal)):
            factor = _resolve(inputs, meter.multiplier)
            count = count * factor if isinstance(factor, (int, Decimal)) else None
        base = {"name": resource["name"], "type": resource["type"], "stage": resource.get("stage"), "model": model}
        if not isinstance(sku, str) or sku == UNKNOWN or not isinstance(count, (int, Decimal)):
            reason = f"{meter.sku if not isinstance(sku, str) or sku == UNKNOWN else meter.count} is not known before deployment"
            result.unpriced.append(Unpriced(**base, kind=meter.kind, reason=reason))
            continue
        price = table.price(result.region, sku)
        if price is None:
            result.unpriced.append(
                Unpriced(**base, kind=meter.kind, reason=f"{table.id} has no price for {sku} in {result.region}")
            )
            continue
        quantity = Decimal(count)
        hours = HOURS_PER_MONTH if table.unit == "hour" else Decimal(1)
        result.items.append(
            Item(
                **base,
                kind=meter.kind,
                sku=sku,
                quantity=quantity,
                unit=table.unit,
                unit_price=price,
                monthly=price * quantity * hours,
                table=table.id,
            )
        )


def _training(result: Estimate, spec: Any, settings: Any) -> None:
    """Scheduled retraining runs, each priced at its full max_runtime (an upper bound)."""
    usage = result.book.usage.get("training")
    extra = Decimal(spec.estimate.extra_training_runs_per_month)
    result.assumptions["training"] = (
        "runs per month from each model's retraining.schedule"
        + (f", plus estimate.extra_training_runs_per_month ({extra})" if extra else "")
        + "; each run lasts max_runtime and is priced at the on-demand rate (spot capacity usually costs less;"
        " runs started by new data or drift are not counted unless estimate.extra_training_runs_per_month says so)"
    )
    pricing = importlib.import_module(f"mlops_infra.backends.{result.cloud}.pricing")
    for model in spec.models:
        if model.training is None:
            continue
        schedule = model.retraining.schedule if model.retraining is not None else None
        runs = (scheduled_runs_per_month(schedule) if schedule else Decimal(0)) + extra
        if runs == 0:
            continue
        name = f"training-runs-{model.name}"
        hours = Decimal(model.training.max_runtime) / 3600 * model.training.compute.instance_count
        for sku, count in pricing.training_skus(model=model, settings=settings):
            price = result.book.table(usage["table"]).price(result.region, sku) if usage else None
            base = {"name": name, "type": "training-run", "stage": "training", "model": model.name}
            if price is None or usage is None:
                table = usage["table"] if usage else "no training table"
                result.unpriced.append(
                    Unpriced(**base, kind="usage", reason=f"{table} has no price for {sku} in {result.region}")
                )
                continue
            quantity = runs * hours * count
            result.items.append(
                Item(
                    **base,
                    kind="usage",
                    sku=sku,
                    quantity=quantity,
                    unit="hour",
                    unit_price=price,
                    monthly=price * quantity,
                    table=usage["table"],
                    detail=f"{_number(runs, 2)} runs/month x {_number(hours, 2)} h x {count}",
                )
            )


def _storage(result: Estimate, spec: Any) -> None:
    """Every bucket (data buckets and the artifact bucket) at the assumed GB, standard class."""
    usage = result.book.usage.get("storage")
    gb = Decimal(spec.estimate.storage_gb)
    result.assumptions["storage"] = (
        f"{gb} GB stored per bucket (estimate.storage_gb), all in the standard class: archive tiers cost less,"
        " versions and captured data more"
    )
    names = [b.name for b in spec.storage.buckets] + ["artifacts"]
    for bucket in names:
        base: dict[str, Any] = {"name": f"storage-{bucket}", "type": "bucket-storage", "stage": "storage", "model": None}
        price = result.book.table(usage["table"]).price(result.region, usage["sku"]) if usage else None
        if price is None or usage is None:
            result.unpriced.append(Unpriced(**base, kind="usage", reason=f"no storage price in {result.region}"))
            continue
        result.items.append(
            Item(
                **base,
                kind="usage",
                sku=usage["sku"],
                quantity=gb,
                unit="GB-month",
                unit_price=price,
                monthly=price * gb,
                table=usage["table"],
            )
        )


def value_at(data: Any, path: str) -> Any:
    """A dotted path into plan inputs ('machineSpec.machineType'); None when absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _resolve(item: Any, path: str) -> Any:
    if path.startswith("="):
        return path[1:]
    value = value_at(item, path)
    if isinstance(value, str) and value.isdigit():
        return int(value)  # Azure autoscale capacities are strings
    return value


def _number(value: Decimal, places: int) -> float | int:
    rounded = round(value, places)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)
