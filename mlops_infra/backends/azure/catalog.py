"""Neutral compute -> Azure VM sizes, per purpose (pure data, small functions, the overrides' checks).

Purposes: "training" (Azure ML compute clusters, AmlCompute), "processing"
(data processing and monitoring jobs, on the same AmlCompute clusters) and
"serving" (managed online endpoint deployments, which accept a narrower list).

Size classes map through SIZE_CLASS_TYPES; explicit cpus / memory_gib / gpus
requirements pick the smallest listed type (fewest GPUs, then vCPUs, then
memory, then name) that meets all three. Azure accepts VM size names in any
case, so overrides are compared case-insensitively.
"""

from __future__ import annotations

import difflib
from typing import Any

from mlops_infra.backends.base import CatalogMiss
from mlops_infra.spec.models import Compute
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

CLOUD = "Azure"
PURPOSES = ("training", "serving", "processing")

# vCPUs, memory (GiB) and GPUs of each VM size we list.
# Source: learn.microsoft.com/azure/virtual-machines/sizes (DSv2, Dsv3, Dasv4, Esv3, Fsv2,
# NCasT4_v3, NCv3, NC A100 v4, ND A100 v4, NDasrA100_v4, NC H100 v5, ND H100 v5 series pages).
VM_SIZES: dict[str, dict[str, float]] = {
    # general purpose, Intel (DSv2: the classic Azure ML defaults)
    "Standard_DS1_v2": {"cpus": 1, "memory_gib": 3.5, "gpus": 0},
    "Standard_DS2_v2": {"cpus": 2, "memory_gib": 7, "gpus": 0},
    "Standard_DS3_v2": {"cpus": 4, "memory_gib": 14, "gpus": 0},
    "Standard_DS4_v2": {"cpus": 8, "memory_gib": 28, "gpus": 0},
    "Standard_DS5_v2": {"cpus": 16, "memory_gib": 56, "gpus": 0},
    # general purpose, Intel (Dsv3)
    "Standard_D2s_v3": {"cpus": 2, "memory_gib": 8, "gpus": 0},
    "Standard_D4s_v3": {"cpus": 4, "memory_gib": 16, "gpus": 0},
    "Standard_D8s_v3": {"cpus": 8, "memory_gib": 32, "gpus": 0},
    "Standard_D16s_v3": {"cpus": 16, "memory_gib": 64, "gpus": 0},
    "Standard_D32s_v3": {"cpus": 32, "memory_gib": 128, "gpus": 0},
    "Standard_D48s_v3": {"cpus": 48, "memory_gib": 192, "gpus": 0},
    "Standard_D64s_v3": {"cpus": 64, "memory_gib": 256, "gpus": 0},
    # general purpose, AMD (Dasv4)
    "Standard_D2as_v4": {"cpus": 2, "memory_gib": 8, "gpus": 0},
    "Standard_D4as_v4": {"cpus": 4, "memory_gib": 16, "gpus": 0},
    "Standard_D8as_v4": {"cpus": 8, "memory_gib": 32, "gpus": 0},
    "Standard_D16as_v4": {"cpus": 16, "memory_gib": 64, "gpus": 0},
    "Standard_D32as_v4": {"cpus": 32, "memory_gib": 128, "gpus": 0},
    "Standard_D48as_v4": {"cpus": 48, "memory_gib": 192, "gpus": 0},
    "Standard_D64as_v4": {"cpus": 64, "memory_gib": 256, "gpus": 0},
    "Standard_D96as_v4": {"cpus": 96, "memory_gib": 384, "gpus": 0},
    # memory optimized (Esv3)
    "Standard_E2s_v3": {"cpus": 2, "memory_gib": 16, "gpus": 0},
    "Standard_E4s_v3": {"cpus": 4, "memory_gib": 32, "gpus": 0},
    "Standard_E8s_v3": {"cpus": 8, "memory_gib": 64, "gpus": 0},
    "Standard_E16s_v3": {"cpus": 16, "memory_gib": 128, "gpus": 0},
    "Standard_E32s_v3": {"cpus": 32, "memory_gib": 256, "gpus": 0},
    "Standard_E48s_v3": {"cpus": 48, "memory_gib": 384, "gpus": 0},
    "Standard_E64s_v3": {"cpus": 64, "memory_gib": 432, "gpus": 0},
    # compute optimized (Fsv2)
    "Standard_F2s_v2": {"cpus": 2, "memory_gib": 4, "gpus": 0},
    "Standard_F4s_v2": {"cpus": 4, "memory_gib": 8, "gpus": 0},
    "Standard_F8s_v2": {"cpus": 8, "memory_gib": 16, "gpus": 0},
    "Standard_F16s_v2": {"cpus": 16, "memory_gib": 32, "gpus": 0},
    "Standard_F32s_v2": {"cpus": 32, "memory_gib": 64, "gpus": 0},
    "Standard_F48s_v2": {"cpus": 48, "memory_gib": 96, "gpus": 0},
    "Standard_F64s_v2": {"cpus": 64, "memory_gib": 128, "gpus": 0},
    "Standard_F72s_v2": {"cpus": 72, "memory_gib": 144, "gpus": 0},
    # GPU: NVIDIA T4 (NCasT4_v3), inference and small training
    "Standard_NC4as_T4_v3": {"cpus": 4, "memory_gib": 28, "gpus": 1},
    "Standard_NC8as_T4_v3": {"cpus": 8, "memory_gib": 56, "gpus": 1},
    "Standard_NC16as_T4_v3": {"cpus": 16, "memory_gib": 110, "gpus": 1},
    "Standard_NC64as_T4_v3": {"cpus": 64, "memory_gib": 440, "gpus": 4},
    # GPU: NVIDIA V100 (NCv3; announced for retirement, accepted for overrides only)
    "Standard_NC6s_v3": {"cpus": 6, "memory_gib": 112, "gpus": 1},
    "Standard_NC12s_v3": {"cpus": 12, "memory_gib": 224, "gpus": 2},
    "Standard_NC24s_v3": {"cpus": 24, "memory_gib": 448, "gpus": 4},
    # GPU: NVIDIA A100 80 GB (NC A100 v4)
    "Standard_NC24ads_A100_v4": {"cpus": 24, "memory_gib": 220, "gpus": 1},
    "Standard_NC48ads_A100_v4": {"cpus": 48, "memory_gib": 440, "gpus": 2},
    "Standard_NC96ads_A100_v4": {"cpus": 96, "memory_gib": 880, "gpus": 4},
    # GPU: 8x NVIDIA A100 (ND A100 v4, InfiniBand)
    "Standard_ND96asr_v4": {"cpus": 96, "memory_gib": 900, "gpus": 8},
    "Standard_ND96amsr_A100_v4": {"cpus": 96, "memory_gib": 1900, "gpus": 8},
    # GPU: NVIDIA H100 (NC H100 v5, ND H100 v5)
    "Standard_NC40ads_H100_v5": {"cpus": 40, "memory_gib": 320, "gpus": 1},
    "Standard_NC80adis_H100_v5": {"cpus": 80, "memory_gib": 640, "gpus": 2},
    "Standard_ND96isr_H100_v5": {"cpus": 96, "memory_gib": 1900, "gpus": 8},
}

_RETIRING = ("Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3")

# What each purpose accepts.
# serving: learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list
#   (the managed online endpoint SKU list; fractional-GPU NVadsA10 sizes and retired NCv2/NDv2 left out).
# training / processing: Azure ML compute clusters accept the region's VM sizes; we list the
#   families Azure ML documents for compute clusters (learn.microsoft.com/azure/machine-learning/
#   concept-compute-target#supported-vm-series-and-sizes).
SERVING_TYPES: tuple[str, ...] = (
    "Standard_DS1_v2", "Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2",
    "Standard_D2as_v4", "Standard_D4as_v4", "Standard_D8as_v4", "Standard_D16as_v4", "Standard_D32as_v4",
    "Standard_D48as_v4", "Standard_D64as_v4", "Standard_D96as_v4",
    "Standard_E2s_v3", "Standard_E4s_v3", "Standard_E8s_v3", "Standard_E16s_v3", "Standard_E32s_v3",
    "Standard_E48s_v3", "Standard_E64s_v3",
    "Standard_F2s_v2", "Standard_F4s_v2", "Standard_F8s_v2", "Standard_F16s_v2", "Standard_F32s_v2",
    "Standard_F48s_v2", "Standard_F64s_v2", "Standard_F72s_v2",
    "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3",
    "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3",
    "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4",
    "Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5",
)  # fmt: skip
TRAINING_TYPES: tuple[str, ...] = (
    "Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2",
    "Standard_D2s_v3", "Standard_D4s_v3", "Standard_D8s_v3", "Standard_D16s_v3", "Standard_D32s_v3",
    "Standard_D48s_v3", "Standard_D64s_v3",
    "Standard_E2s_v3", "Standard_E4s_v3", "Standard_E8s_v3", "Standard_E16s_v3", "Standard_E32s_v3",
    "Standard_E48s_v3", "Standard_E64s_v3",
    "Standard_F4s_v2", "Standard_F8s_v2", "Standard_F16s_v2", "Standard_F32s_v2", "Standard_F64s_v2",
    "Standard_F72s_v2",
    "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3",
    "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3",
    "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4",
    "Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5",
)  # fmt: skip
PURPOSE_TYPES: dict[str, tuple[str, ...]] = {
    "training": TRAINING_TYPES,
    "processing": TRAINING_TYPES,  # processing and monitoring jobs run on the same compute clusters
    "serving": SERVING_TYPES,
}

# Neutral size class -> VM size per purpose (each meets the class's requirements; a test checks it).
# Training GPUs favour A100s for the larger classes; serving favours T4s, Azure's inference GPU.
SIZE_CLASS_TYPES: dict[str, dict[str, str]] = {
    "training": {
        "cpu-small": "Standard_D2s_v3",
        "cpu-medium": "Standard_D4s_v3",
        "cpu-large": "Standard_D8s_v3",
        "cpu-xlarge": "Standard_D16s_v3",
        "gpu-small": "Standard_NC4as_T4_v3",
        "gpu-large": "Standard_NC24ads_A100_v4",
        "gpu-x4": "Standard_NC96ads_A100_v4",
        "gpu-x8": "Standard_ND96asr_v4",
    },
    "serving": {
        "cpu-small": "Standard_D2as_v4",
        "cpu-medium": "Standard_D4as_v4",
        "cpu-large": "Standard_D8as_v4",
        "cpu-xlarge": "Standard_D16as_v4",
        "gpu-small": "Standard_NC4as_T4_v3",
        "gpu-large": "Standard_NC8as_T4_v3",
        "gpu-x4": "Standard_NC64as_T4_v3",
        "gpu-x8": "Standard_ND96asr_v4",
    },
}
SIZE_CLASS_TYPES["processing"] = dict(SIZE_CLASS_TYPES["training"])

SERVICE = {
    "training": "Azure ML compute clusters",
    "processing": "Azure ML compute clusters",
    "serving": "Azure ML managed online endpoints",
}


def meets(vm_size: str, requirements: dict[str, int]) -> bool:
    facts = VM_SIZES[vm_size]
    return (
        facts["cpus"] >= requirements["cpus"]
        and facts["memory_gib"] >= requirements["memory_gib"]
        and facts["gpus"] >= requirements["gpus"]
    )


def instance_type(compute: Compute, purpose: str, settings: Any = None) -> str:
    """The VM size for `compute` used for `purpose`; CatalogMiss when Azure cannot serve it.

    `settings` (the clouds.azure block) is accepted for symmetry with the other clouds; Azure's
    catalog does not depend on it yet (regional availability is only known to the cloud).
    """
    if purpose not in PURPOSE_TYPES:
        raise ValueError(f"unknown purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
    if compute.size:
        return SIZE_CLASS_TYPES[purpose][compute.size]
    needs = compute.requirements
    candidates = [t for t in PURPOSE_TYPES[purpose] if t not in _RETIRING and meets(t, needs)]
    if not candidates:
        raise CatalogMiss(
            f"{CLOUD} has no {SERVICE[purpose]} VM size with {compute.label}",
            hint=_closest_hint(needs, purpose),
        )
    return min(candidates, key=lambda t: (VM_SIZES[t]["gpus"], VM_SIZES[t]["cpus"], VM_SIZES[t]["memory_gib"], t))


def _closest_hint(needs: dict[str, int], purpose: str) -> str:
    biggest = {
        "cpus": max(VM_SIZES[t]["cpus"] for t in PURPOSE_TYPES[purpose]),
        "memory_gib": max(VM_SIZES[t]["memory_gib"] for t in PURPOSE_TYPES[purpose]),
        "gpus": max(VM_SIZES[t]["gpus"] for t in PURPOSE_TYPES[purpose]),
    }
    over = [f"{key} {needs[key]} > {biggest[key]:g}" for key in ("cpus", "memory_gib", "gpus") if needs[key] > biggest[key]]
    if over:
        text = "the largest single VM offers " + ", ".join(f"{key} {value:g}" for key, value in biggest.items())
        return f"{text} ({'; '.join(over)}); lower the requirement or use a size class such as gpu-x8"
    return "no single listed VM combines these; use a size class (see SIZE_CLASSES) or lower one requirement"


def _canonical(value: str, purpose: str) -> str | None:
    lowered = value.lower()
    return next((t for t in PURPOSE_TYPES[purpose] if t.lower() == lowered), None)


def canonical(value: str, purpose: str) -> str | None:
    """The catalog's spelling of a VM size `purpose` accepts (Azure ignores case), else None."""
    return _canonical(value, purpose)


def training_vm_size(model: Any, settings: Any) -> str:
    """The VM size of a model's training cluster: the override when given, else the catalog's."""
    override = settings.overrides.models.get(model.name) if settings is not None else None
    if override is not None and override.training_vm_size:
        return canonical(override.training_vm_size, "training") or override.training_vm_size
    return instance_type(model.training.compute, "training", settings)


def serving_instance_type(model: Any, settings: Any) -> str:
    """The instance type of a model's online deployment: the override when given, else the catalog's."""
    override = settings.overrides.models.get(model.name) if settings is not None else None
    if override is not None and override.serving_instance_type:
        return canonical(override.serving_instance_type, "serving") or override.serving_instance_type
    return instance_type(model.serving.compute, "serving", settings)


def check_override(value: str, purpose: str) -> str | None:
    """None when `value` is a VM size Azure accepts for `purpose`, else a message with close matches."""
    if _canonical(value, purpose) is not None:
        return None
    where = SERVICE[purpose]
    other = next((p for p in ("training", "serving") if p != purpose and _canonical(value, p)), None)
    if other:
        return f"{value!r} is not offered by {where} (it is a {other} size on {CLOUD})"
    close = difflib.get_close_matches(value, PURPOSE_TYPES[purpose], n=3, cutoff=0.6)
    suggestion = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{value!r} is not a VM size {where} accept{suggestion}"


def unmet(value: str, compute: Compute, purpose: str) -> list[str]:
    """Which neutral requirements an accepted override falls short of ([] when it meets them)."""
    name = _canonical(value, purpose)
    if name is None:
        return []
    facts = VM_SIZES[name]
    needs = compute.requirements
    return [
        f"{key} {facts[key]:g} < {needs[key]}" for key in ("cpus", "memory_gib", "gpus") if facts[key] < needs[key]
    ]


# (model part, catalog purpose, clouds.azure.overrides.models.<model> field)
OVERRIDABLE = (
    ("training", "training", "training_vm_size"),
    ("serving", "serving", "serving_instance_type"),
)
OVERRIDE_FIELD = {purpose: field for _, purpose, field in OVERRIDABLE}


def override_problems(spec: Any, settings: Any) -> list[Problem]:
    """Overrides Azure would refuse, that have no effect, or that fall short of the neutral compute."""
    problems: list[Problem] = []
    models = {m.name: m for m in spec.models}
    base = ("clouds", "azure", "overrides", "models")
    for name, override in sorted(settings.overrides.models.items()):
        model = models.get(name)
        if model is None:
            continue  # reported by checks.unknown_override_models
        for part, purpose, field in OVERRIDABLE:
            value = getattr(override, field)
            if value is not None:
                problems += _override_problems(spec, model, part, purpose, value, (*base, name, field))
    return problems


def _override_problems(spec: Any, model: Any, part: str, purpose: str, value: str, path: tuple) -> list[Problem]:
    message = check_override(value, purpose)
    if message:
        hint = f"see {SERVICE[purpose]} sizes in mlops_infra/backends/azure/catalog.py"
        return [finding(path, message, hint=hint, value=value)]
    block = getattr(model, part)
    if block is None:
        return [
            finding(
                path,
                f"has no effect: model {model.name!r} has no {part} block",
                hint=f"remove the override or add models[{spec.models.index(model)}].{part}",
                severity="warning",
            )
        ]
    short = unmet(value, block.compute, purpose)
    if not short:
        return []
    return [
        finding(
            path,
            f"{value} falls short of the model's {part} compute ({block.compute.label}): " + ", ".join(short),
            hint="pick a larger size or lower the requirement",
            value=value,
            severity="warning",
        )
    ]
