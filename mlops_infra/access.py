"""Who reads which data: each model's data reads, grouped by the identity that performs them.

A model reads its training inputs, its drift baseline and its new-data trigger, and nothing
else. One identity per model group (`models[].group`, default the model's own name) performs a
group's reads, so every grant names only its group's prefixes: the size of any one identity's
grants is bounded by its group, never by the fleet, which keeps each cloud's per-identity IAM
limits (policy size, condition length, conditional bindings) out of reach as models are added.
Groups are the same unit as split model stacks (mlops_infra/layout.py), so a team's models share
an identity and a stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from mlops_infra.layout import group_of

if TYPE_CHECKING:
    from mlops_infra.spec.models import DataRef, Model, SpecBase


@dataclass(frozen=True)
class ReaderGroup:
    """One data-reading identity: its group name, its models, and what it may read."""

    name: str
    models: tuple[str, ...]
    reads: dict[str, list[str]]  # bucket -> prefixes, [""] for the whole bucket
    writes: dict[str, list[str]] = field(default_factory=dict)  # data buckets it writes: batch output, prepared data


def model_refs(model: "Model") -> list["DataRef"]:
    """Every data location one model's jobs read: training inputs, drift, attribution and bias
    baselines, ground truth, the new-data trigger, batch inputs and data-preparation inputs."""
    refs = list(model.training.input_refs) if model.training else []
    monitoring = model.monitoring
    if monitoring and monitoring.drift:
        refs.append(monitoring.drift.baseline_ref)
    if monitoring and monitoring.explainability:
        refs.append(monitoring.explainability.baseline)
    if monitoring and monitoring.bias:
        refs.append(monitoring.bias.baseline)
    if monitoring and monitoring.model_quality:
        refs.append(monitoring.model_quality.ground_truth)
    if model.retraining and model.retraining.new_data_ref:
        refs.append(model.retraining.new_data_ref)
    if model.batch:
        refs.append(model.batch.input)
    if model.data_prep:
        refs += model.data_prep.inputs
    return refs


def model_writes(model: "Model") -> list["DataRef"]:
    """The data locations one model's jobs write besides the artifact bucket: batch predictions
    and prepared data (the group identity may write there and nowhere else in data buckets)."""
    writes = [model.batch.output] if model.batch else []
    if model.data_prep:
        writes.append(model.data_prep.output)
    return writes


def writes_of(models: Iterable["Model"]) -> dict[str, list[str]]:
    """Bucket -> the prefixes `models` write, sorted and covering (like reads_of)."""
    wanted: dict[str, set[str]] = {}
    for model in models:
        for ref in model_writes(model):
            wanted.setdefault(ref.bucket, set()).add(ref.prefix)
    return {bucket: covering_prefixes(prefixes) for bucket, prefixes in sorted(wanted.items())}


def reads_of(models: Iterable["Model"]) -> dict[str, list[str]]:
    """Bucket -> the prefixes `models` read, sorted; a prefix inside a kept one is dropped."""
    wanted: dict[str, set[str]] = {}
    for model in models:
        for ref in model_refs(model):
            wanted.setdefault(ref.bucket, set()).add(ref.prefix)
    return {bucket: covering_prefixes(prefixes) for bucket, prefixes in sorted(wanted.items())}


def covering_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The fewest prefixes that cover all of `prefixes` ("" covers everything), sorted."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes), key=lambda p: (len(p), p)):
        if not any(prefix.startswith(k) for k in kept):
            kept.append(prefix)
    return sorted(kept)


def reader_groups(spec: "SpecBase") -> dict[str, ReaderGroup]:
    """Group name -> its reader identity, for every group with a model that trains or reads data.

    Sorted by group name. Decided from the whole spec, so every stack of a split spec agrees.
    """
    members: dict[str, list["Model"]] = {}
    for model in spec.models:
        if model.training is not None or model_refs(model) or model_writes(model):
            members.setdefault(group_of(model), []).append(model)
    return {
        name: ReaderGroup(
            name=name, models=tuple(m.name for m in models), reads=reads_of(models), writes=writes_of(models)
        )
        for name, models in sorted(members.items())
    }
