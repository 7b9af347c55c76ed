"""Price books: each cloud's prices as reference data, backends/<cloud>/prices.json.

A price book holds price tables (one per cloud service, each with the page it comes from and
the date it was read) and meters, which say how a resource type of the plan consumes a table:
which input names the SKU (an instance type, a tracking server size), how many of it run, and
for how long. Adding a price, a region or a resource type is a change to that file only.
A SKU or region missing from a table is never guessed: the estimate lists it as unpriced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from mlops_infra.errors import InternalError

HOURS_PER_MONTH = Decimal(730)  # the clouds' own convention for monthly estimates (8,760 h / 12)
UNITS = ("hour", "month", "GB-month")
KINDS = ("always_on", "usage")
ANY_REGION = "*"  # a table entry valid in every region (global prices such as a key-month)
# How a table's figures were read: on the cloud's page itself, in a mirror of the cloud's price
# data (a file at a commit, generated from the cloud's price API), or in a transcription of the
# page by someone else (second-hand: kept only where the note says why it is trusted).
READ_FROM = ("page", "mirror", "transcription")


@dataclass(frozen=True)
class PriceTable:
    id: str
    service: str
    unit: str  # "hour", "month" or "GB-month"
    source: str  # the cloud's price page the figures come from, or the mirror file (at a commit) they were read in
    as_of: str  # when they were read (YYYY-MM-DD)
    regions: dict[str, dict[str, Decimal]]
    note: str = ""  # how the figures were read, or what they leave out
    read_from: str = "page"  # one of READ_FROM
    mirror_of: str = ""  # when read from a mirror: the official price source it copies

    def price(self, region: str, sku: str) -> Decimal | None:
        for where in (region, ANY_REGION):
            found = self.regions.get(where, {}).get(sku)
            if found is not None:
                return found
        return None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"table": self.id, "service": self.service, "unit": self.unit}
        data.update({"source": self.source, "as_of": self.as_of, "read_from": self.read_from})
        if self.mirror_of:
            data["mirror_of"] = self.mirror_of
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class Meter:
    """How one resource type consumes a table.

    `sku` and `count` are dotted paths into the resource's inputs (a leading '=' makes a
    constant); `each` names a list input whose items are metered one by one (production
    variants). `count` defaults to one.
    """

    type: str
    table: str
    sku: str
    count: str | None = None
    each: str | None = None
    multiplier: str | None = None  # a second count path (accelerators per replica x replicas)
    kind: str = "always_on"


@dataclass(frozen=True)
class PriceBook:
    cloud: str
    currency: str
    region_setting: str  # the clouds.<cloud> field that holds the region
    tables: dict[str, PriceTable]
    meters: dict[str, tuple[Meter, ...]]
    no_charge: dict[str, str]  # type -> why it has no charge of its own
    usage_only: dict[str, str]  # type -> what it bills by use (listed as unpriced usage, never as free)
    usage: dict[str, dict[str, str]] = field(default_factory=dict)  # "training"/"storage" -> table (+ sku)

    def table(self, table_id: str) -> PriceTable:
        return self.tables[table_id]


@lru_cache(maxsize=None)
def price_book(cloud: str) -> PriceBook:
    """The price book of a registered backend (reads backends/<cloud>/prices.json)."""
    try:
        text = resources.files(f"mlops_infra.backends.{cloud}").joinpath("prices.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        raise InternalError(f"the {cloud} backend has no price book (backends/{cloud}/prices.json)") from None
    return parse_book(cloud, json.loads(text, parse_float=Decimal, parse_int=Decimal))


def parse_book(cloud: str, raw: dict[str, Any]) -> PriceBook:
    """Build and check a price book; a malformed book is a bug in mlops-infra, said plainly."""
    problems: list[str] = []
    tables: dict[str, PriceTable] = {}
    for table_id, body in raw.get("tables", {}).items():
        # A table may have no figures yet (every SKU then reports unpriced), never lack its source.
        missing = [k for k in ("service", "unit", "source", "as_of") if not body.get(k)]
        if missing or body.get("unit") not in UNITS:
            problems.append(f"table {table_id}: missing {', '.join(missing) or 'a known unit'}")
            continue
        read_from = body.get("read_from", "page")
        if read_from not in READ_FROM or (read_from == "mirror") != bool(body.get("mirror_of")):
            problems.append(f"table {table_id}: read_from must be one of {', '.join(READ_FROM)}, and a mirror names mirror_of")
            continue
        regions = {
            region: {sku: Decimal(price) for sku, price in skus.items()} for region, skus in body["regions"].items()
        }
        tables[table_id] = PriceTable(
            id=table_id,
            service=body["service"],
            unit=body["unit"],
            source=body["source"],
            as_of=body["as_of"],
            regions=regions,
            note=body.get("note", ""),
            read_from=read_from,
            mirror_of=body.get("mirror_of", ""),
        )
    meters: dict[str, list[Meter]] = {}
    for entry in raw.get("meters", []):
        meter = Meter(**{k: (str(v) if isinstance(v, Decimal) else v) for k, v in entry.items()})
        if meter.table not in tables or meter.kind not in KINDS:
            problems.append(f"meter for {meter.type}: unknown table {meter.table!r} or kind {meter.kind!r}")
        meters.setdefault(meter.type, []).append(meter)
    usage = {purpose: dict(body) for purpose, body in raw.get("usage", {}).items()}
    problems += [f"usage {p}: unknown table {b.get('table')!r}" for p, b in usage.items() if b.get("table") not in tables]
    if problems:
        raise InternalError(f"the {cloud} price book is malformed: " + "; ".join(problems))
    return PriceBook(
        cloud=cloud,
        currency=raw.get("currency", "USD"),
        region_setting=raw["region_setting"],
        tables=tables,
        meters={t: tuple(m) for t, m in meters.items()},
        no_charge=dict(raw.get("no_charge", {})),
        usage_only=dict(raw.get("usage_only", {})),
        usage=usage,
    )


