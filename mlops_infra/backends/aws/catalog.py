"""Neutral compute -> SageMaker instance types, per purpose (training, serving, processing).

Pure data and pure functions: no SDK. Three kinds of facts, each with its source:
- which ml.* types SageMaker accepts for each purpose: data/sagemaker-instance-types.json
  (the TrainingInstanceType / ProductionVariantInstanceType / ProcessingInstanceType enums
  of botocore's sagemaker service model);
- what each type offers (vCPUs, memory, NVIDIA GPUs): INSTANCE_SPECS below;
- which type stands for each neutral size class: SIZE_CLASS_TYPES below.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

from mlops_infra.backends.base import CatalogMiss
from mlops_infra.spec.models import Compute
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

PURPOSES = ("training", "serving", "processing", "transform")

# Purpose -> the botocore enum that lists the instance types SageMaker accepts for it.
PURPOSE_ENUMS = {
    "training": "TrainingInstanceType",  # CreateTrainingJob ResourceConfig.InstanceType
    "serving": "ProductionVariantInstanceType",  # CreateEndpointConfig ProductionVariants[].InstanceType
    "processing": "ProcessingInstanceType",  # CreateProcessingJob / monitoring ClusterConfig.InstanceType
    "transform": "TransformInstanceType",  # CreateTransformJob TransformResources.InstanceType (batch)
}

# Words the messages use for each purpose.
# The clouds.aws.overrides.models.<model> field that replaces the catalog for each purpose.
OVERRIDE_FIELDS = {"training": "training_instance_type", "serving": "serving_instance_type"}
PURPOSE_WORDS = {"training": "training jobs", "serving": "real-time endpoints", "processing": "processing jobs",
                 "transform": "batch transform jobs"}


class InstanceSpec(NamedTuple):
    cpus: int  # vCPUs
    memory_gib: int
    gpus: int  # NVIDIA GPUs


# What each candidate type offers. Source: Amazon EC2 instance type specifications
# (docs.aws.amazon.com/ec2/latest/instancetypes: general purpose m5, compute optimized c5,
# memory optimized r5, accelerated computing g4dn / g5 / p4d / p5); an ml.* type has the
# vCPUs, memory and GPUs of the EC2 type of the same name (aws.amazon.com/sagemaker/pricing).
# Only x86 types with NVIDIA GPUs (or none) are candidates: Graviton (arm64), Inferentia and
# Trainium need images built for them, burstable t2/t3 types do not sustain workloads. Any
# other type remains available through clouds.aws.overrides. Order = preference on ties.
INSTANCE_SPECS: dict[str, InstanceSpec] = {
    # general purpose: 4 GiB per vCPU
    "ml.m5.large": InstanceSpec(2, 8, 0),
    "ml.m5.xlarge": InstanceSpec(4, 16, 0),
    "ml.m5.2xlarge": InstanceSpec(8, 32, 0),
    "ml.m5.4xlarge": InstanceSpec(16, 64, 0),
    "ml.m5.12xlarge": InstanceSpec(48, 192, 0),
    "ml.m5.24xlarge": InstanceSpec(96, 384, 0),
    # compute optimized: 2 GiB per vCPU
    "ml.c5.large": InstanceSpec(2, 4, 0),
    "ml.c5.xlarge": InstanceSpec(4, 8, 0),
    "ml.c5.2xlarge": InstanceSpec(8, 16, 0),
    "ml.c5.4xlarge": InstanceSpec(16, 32, 0),
    "ml.c5.9xlarge": InstanceSpec(36, 72, 0),
    "ml.c5.18xlarge": InstanceSpec(72, 144, 0),
    # memory optimized: 8 GiB per vCPU
    "ml.r5.large": InstanceSpec(2, 16, 0),
    "ml.r5.xlarge": InstanceSpec(4, 32, 0),
    "ml.r5.2xlarge": InstanceSpec(8, 64, 0),
    "ml.r5.4xlarge": InstanceSpec(16, 128, 0),
    "ml.r5.8xlarge": InstanceSpec(32, 256, 0),
    "ml.r5.12xlarge": InstanceSpec(48, 384, 0),
    "ml.r5.16xlarge": InstanceSpec(64, 512, 0),
    "ml.r5.24xlarge": InstanceSpec(96, 768, 0),
    # NVIDIA T4
    "ml.g4dn.xlarge": InstanceSpec(4, 16, 1),
    "ml.g4dn.2xlarge": InstanceSpec(8, 32, 1),
    "ml.g4dn.4xlarge": InstanceSpec(16, 64, 1),
    "ml.g4dn.8xlarge": InstanceSpec(32, 128, 1),
    "ml.g4dn.16xlarge": InstanceSpec(64, 256, 1),
    "ml.g4dn.12xlarge": InstanceSpec(48, 192, 4),
    # NVIDIA A10G
    "ml.g5.xlarge": InstanceSpec(4, 16, 1),
    "ml.g5.2xlarge": InstanceSpec(8, 32, 1),
    "ml.g5.4xlarge": InstanceSpec(16, 64, 1),
    "ml.g5.8xlarge": InstanceSpec(32, 128, 1),
    "ml.g5.16xlarge": InstanceSpec(64, 256, 1),
    "ml.g5.12xlarge": InstanceSpec(48, 192, 4),
    "ml.g5.24xlarge": InstanceSpec(96, 384, 4),
    "ml.g5.48xlarge": InstanceSpec(192, 768, 8),
    # NVIDIA A100 / H100
    "ml.p4d.24xlarge": InstanceSpec(96, 1152, 8),
    "ml.p5.48xlarge": InstanceSpec(192, 2048, 8),
}

# Neutral size class -> type, per purpose. Each type meets the class's cpus / memory / gpus
# (SIZE_CLASSES in spec/models.py) and is in that purpose's botocore enum (a test checks both).
# gpu-large takes an A10G (g5) rather than a T4; gpu-x8 takes 8 A100s (p4d) where SageMaker
# offers them: processing jobs do not accept ml.p4d.*, so they get 8 A10Gs (g5.48xlarge).
_COMMON = {
    "cpu-small": "ml.m5.large",
    "cpu-medium": "ml.m5.xlarge",
    "cpu-large": "ml.m5.2xlarge",
    "cpu-xlarge": "ml.m5.4xlarge",
    "gpu-small": "ml.g4dn.xlarge",
    "gpu-large": "ml.g5.2xlarge",
    "gpu-x4": "ml.g5.12xlarge",
}
SIZE_CLASS_TYPES: dict[str, dict[str, str]] = {
    "training": {**_COMMON, "gpu-x8": "ml.p4d.24xlarge"},
    "serving": {**_COMMON, "gpu-x8": "ml.p4d.24xlarge"},
    "processing": {**_COMMON, "gpu-x8": "ml.g5.48xlarge"},
    "transform": {**_COMMON, "gpu-x8": "ml.g5.48xlarge"},  # no ml.p4d.* for transform jobs either
}


# Families whose instances carry local NVMe instance storage (Amazon EC2 instance types:
# "Instance store volumes"; SageMaker "Training storage folders"). SageMaker puts a job's
# storage on it, encrypted by the instance hardware, and rejects a VolumeKmsKeyId for these
# types (CreateTrainingJob ResourceConfig.VolumeKmsKeyId: "You can't request a
# VolumeKmsKeyId when using an instance type with local storage"). Families with a "d" in
# their suffix (m5d, r5d, g4dn, p3dn, p4d, c6id...) all have it; these do without the "d":
_INSTANCE_STORE_WITHOUT_D = frozenset({
    "g5", "g6", "g6e", "g7", "g7e", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "p6e-gb200",
    "trn1", "trn1n", "trn2", "i3", "i4i", "x1", "x1e",
})
_D_SUFFIX = re.compile(r"^[a-z]+[0-9]+[a-z]*d[a-z]*$")


def has_instance_storage(instance_type: str) -> bool:
    """Whether an ml.* type keeps job storage on local NVMe (no EBS volume, no volume key)."""
    parts = instance_type.split(".")
    family = parts[1] if len(parts) == 3 else instance_type
    return family in _INSTANCE_STORE_WITHOUT_D or bool(_D_SUFFIX.match(family))


@lru_cache(maxsize=1)
def _enums() -> dict[str, tuple[str, ...]]:
    raw = json.loads(resources.files("mlops_infra.data").joinpath("sagemaker-instance-types.json").read_text())
    return {purpose: tuple(raw[enum]) for purpose, enum in PURPOSE_ENUMS.items()}


def types_for(purpose: str) -> tuple[str, ...]:
    """Every instance type SageMaker accepts for `purpose`, in botocore's order."""
    _check_purpose(purpose)
    return _enums()[purpose]


def spec_of(instance_type: str) -> InstanceSpec | None:
    """vCPUs / memory / GPUs of a type the catalog knows (None for others)."""
    return INSTANCE_SPECS.get(instance_type)


def instance_type(compute: Compute, purpose: str, settings: Any = None) -> str:
    """The SageMaker type for `compute` used for `purpose`; CatalogMiss when none fits.

    A size class maps through SIZE_CLASS_TYPES; explicit cpus / memory_gib / gpus pick the
    smallest catalog type (fewest GPUs, then vCPUs, then memory) that meets all three.
    `settings` (clouds.aws) only feeds the messages: SageMaker's lists are not per region.
    """
    _check_purpose(purpose)
    where = f" in {settings.region}" if settings is not None and getattr(settings, "region", None) else ""
    accepted = set(types_for(purpose))
    if compute.size:
        chosen = SIZE_CLASS_TYPES[purpose].get(compute.size)
        if chosen is None or chosen not in accepted:
            raise CatalogMiss(
                f"AWS SageMaker{where} has no instance type for size class {compute.size!r} "
                f"on {PURPOSE_WORDS[purpose]}",
                hint=_override_hint(purpose),
            )
        return chosen
    need = compute.requirements
    candidates = [
        (spec.gpus, spec.cpus, spec.memory_gib, order, name)
        for order, (name, spec) in enumerate(INSTANCE_SPECS.items())
        if name in accepted and _meets(spec, need)
    ]
    if not candidates:
        raise CatalogMiss(
            f"AWS SageMaker{where} has no {purpose} instance type with {compute.label}",
            hint=_requirement_hint(need, purpose),
        )
    return min(candidates)[-1]


def check_override(value: str, purpose: str) -> str | None:
    """None when `value` is a type SageMaker accepts for `purpose`, else why not (with close matches)."""
    accepted = types_for(purpose)
    if value in accepted:
        return None
    message = f"{value!r} is not a SageMaker instance type for {PURPOSE_WORDS[purpose]}"
    elsewhere = [p for p in PURPOSES if p != purpose and value in types_for(p)]
    if elsewhere:
        message += f" (SageMaker accepts it for {' and '.join(PURPOSE_WORDS[p] for p in elsewhere)} only)"
    close = difflib.get_close_matches(value, accepted, n=3, cutoff=0.6)
    if close:
        message += f"; did you mean {', '.join(close)}?"
    return message


def _meets(spec: InstanceSpec, need: dict[str, int]) -> bool:
    if need["gpus"] == 0 and spec.gpus:
        return False  # never spend GPUs on a CPU-only requirement
    return spec.cpus >= need["cpus"] and spec.memory_gib >= need["memory_gib"] and spec.gpus >= need["gpus"]


def _requirement_hint(need: dict[str, int], purpose: str) -> str:
    accepted = set(types_for(purpose))
    top = max(s for n, s in INSTANCE_SPECS.items() if n in accepted and bool(s.gpus) == bool(need["gpus"]))
    largest = f"{top.cpus} vCPUs / {top.memory_gib} GiB" + (f" / {top.gpus} GPUs" if top.gpus else "")
    parts = [f"the largest {'GPU' if need['gpus'] else 'CPU'} type in the catalog offers {largest}"]
    if purpose == "training":
        parts.append("spread the work over several instances with compute.instance_count")
    parts.append(_override_hint(purpose))
    return "; ".join(parts)


def _override_hint(purpose: str) -> str:
    if purpose in ("processing", "transform"):
        return f"ask for less ({PURPOSE_WORDS[purpose]} have no override)"
    return f"or name a type under clouds.aws.overrides.models.<model>.{purpose}_instance_type"


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")



def model_instance_type(model: Any, purpose: str, settings: Any) -> str:
    """The instance type of a model's training job or endpoint ("training" / "serving"):
    clouds.aws.overrides.models.<model>.<purpose>_instance_type, else the catalog's choice for
    the model's compute (CatalogMiss when none fits)."""
    override = settings.overrides.models.get(model.name)
    chosen = getattr(override, f"{purpose}_instance_type", None) if override is not None else None
    return chosen or instance_type(getattr(model, purpose).compute, purpose, settings)


def check_overrides(spec: Any, settings: Any) -> list[Problem]:
    """Overridden instance types SageMaker would refuse, that have no effect, or that offer less
    than the model's compute asks for (models the spec lacks: backends/checks.py)."""
    problems: list[Problem] = []
    names = [m.name for m in spec.models]
    for model_name, override in settings.overrides.models.items():
        if model_name not in names:
            continue
        model = spec.model(model_name)
        for purpose, field in OVERRIDE_FIELDS.items():
            value = getattr(override, field)
            if value is None:
                continue
            path = ("clouds", "aws", "overrides", "models", model_name, field)
            message = check_override(value, purpose)
            if message:
                problems.append(finding(path, message, hint=f"see the {PURPOSE_ENUMS[purpose]} list in the "
                                        "SageMaker API reference", value=value))
                continue
            stage = getattr(model, purpose)
            if stage is None:
                problems.append(finding(
                    path, f"model {model_name!r} has no {purpose} section, so this override has no effect",
                    hint=f"remove it, or add models[].{purpose}", value=value, severity="warning"))
                continue
            missing = shortfall(value, stage.compute)
            if missing:
                problems.append(finding(
                    path, f"{value} offers less than models[{names.index(model_name)}].{purpose}.compute asks for "
                    f"({missing})", hint="the override wins; check that the workload fits", value=value,
                    severity="warning"))
    return problems


def shortfall(instance_type: str, compute: Any) -> str:
    """What a known instance type lacks against a compute requirement ("" when it fits or is unknown)."""
    spec = spec_of(instance_type)
    if spec is None:
        return ""
    need = compute.requirements
    missing = []
    if spec.cpus < need["cpus"]:
        missing.append(f"{spec.cpus} < {need['cpus']} vCPUs")
    if spec.memory_gib < need["memory_gib"]:
        missing.append(f"{spec.memory_gib} < {need['memory_gib']} GiB")
    if spec.gpus < need["gpus"]:
        missing.append(f"{spec.gpus} < {need['gpus']} GPUs")
    return ", ".join(missing)
