"""Each cloud's list of regions, as reference data in its backend folder (regions.json).

The file says where the list comes from and when it was read; a region outside
it is refused at validate time with a did-you-mean, instead of failing halfway
through a deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Callable

from mlops_infra.spec.types import HintedValueError, did_you_mean


@dataclass(frozen=True)
class Regions:
    names: frozenset[str]
    source: str
    read: str  # the date the list was read from its source
    limits: str  # what the list does not know


@lru_cache(maxsize=None)
def regions_of(cloud: str) -> Regions:
    raw = json.loads(resources.files(f"mlops_infra.backends.{cloud}").joinpath("regions.json").read_text())
    return Regions(names=frozenset(raw["regions"]), source=raw["_source"], read=raw["_read"], limits=raw["_limits"])


def region_check(cloud: str, *, what: str) -> Callable[[str], str]:
    """A pydantic AfterValidator: the value must be one of `cloud`'s regions."""

    def check(value: str) -> str:
        known = regions_of(cloud)
        if value in known.names:
            return value
        raise HintedValueError(
            f"unknown {what} {value!r}",
            hint=did_you_mean(value, known.names, otherwise=f"one of: {', '.join(sorted(known.names))}")
            + f" (known {what}s: mlops_infra/backends/{cloud}/regions.json, read {known.read} from its source)",
        )

    return check
