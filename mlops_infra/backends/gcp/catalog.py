"""Vertex AI compute catalog: neutral compute requirements -> a machine spec per purpose.

A Vertex AI machine spec is a Compute Engine machine type plus, for GPUs, an accelerator
type and count. Accelerator-optimized families come with their GPUs (a2 with A100s, g2
with L4s, a3 with H100s); N1 machines take attachable GPUs (T4, V100, P100, P4); E2 and N2
take none. Purposes: "training" (custom jobs), "processing" (pipeline steps, which run as
custom jobs too, so they accept the training list) and "serving" (online prediction).

Everything here is data plus small pure functions; nothing imports a cloud SDK.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Optional

from mlops_infra.backends.base import CatalogMiss

PURPOSES = ("training", "serving", "processing")
_SAME_AS = {"processing": "training"}  # purpose -> the purpose whose machine list it shares

# --- CPU machine series -------------------------------------------------------------------
# Memory (GiB) per vCPU of each predefined series.
# Source: cloud.google.com/compute/docs/general-purpose-machines (N1, N2 and E2 tables;
# Compute Engine's "GB" are binary gigabytes).
SERIES_MEMORY_PER_CPU: dict[str, float] = {
    "n1-standard": 3.75,
    "n1-highmem": 6.5,
    "n1-highcpu": 0.9,
    "n2-standard": 4,
    "n2-highmem": 8,
    "n2-highcpu": 1,
    "e2-standard": 4,
    "e2-highmem": 8,
    "e2-highcpu": 1,
}

# vCPU sizes Vertex AI accepts per series and purpose (a conservative subset: a type missing
# here is only rejected as an override, a type listed wrongly would fail a deployment).
# training: cloud.google.com/vertex-ai/docs/training/configure-compute#machine-types
# serving:  cloud.google.com/vertex-ai/docs/predictions/configure-compute#machine-types
SERIES_SIZES: dict[str, dict[str, tuple[int, ...]]] = {
    "training": {
        "n1-standard": (4, 8, 16, 32, 64, 96),
        "n1-highmem": (2, 4, 8, 16, 32, 64, 96),
        "n1-highcpu": (16, 32, 64, 96),
        "n2-standard": (4, 8, 16, 32, 48, 64, 80),
        "n2-highmem": (2, 4, 8, 16, 32, 48, 64, 80),
        "n2-highcpu": (16, 32, 48, 64, 80),
        "e2-standard": (4, 8, 16, 32),
        "e2-highmem": (2, 4, 8, 16),
        "e2-highcpu": (16, 32),
    },
    "serving": {
        "n1-standard": (2, 4, 8, 16, 32),
        "n1-highmem": (2, 4, 8, 16, 32),
        "n1-highcpu": (4, 8, 16, 32),
        "n2-standard": (2, 4, 8, 16, 32, 48, 64, 80),
        "n2-highmem": (2, 4, 8, 16, 32, 48, 64, 80),
        "n2-highcpu": (2, 4, 8, 16, 32, 48, 64, 80),
        "e2-standard": (2, 4, 8, 16, 32),
        "e2-highmem": (2, 4, 8, 16),
        "e2-highcpu": (2, 4, 8, 16, 32),
    },
}

# --- Accelerator-optimized machines (their GPUs are part of the machine type) ---------------
# Source: cloud.google.com/compute/docs/accelerator-optimized-machines (A2, A3, G2 tables);
# Vertex AI support per purpose from the two configure-compute pages above.
_ALL = ("training", "serving")
GPU_MACHINES: dict[str, dict[str, Any]] = {
    "g2-standard-4": {"cpus": 4, "memory_gib": 16, "accelerator": "NVIDIA_L4", "count": 1, "purposes": _ALL},
    "g2-standard-8": {"cpus": 8, "memory_gib": 32, "accelerator": "NVIDIA_L4", "count": 1, "purposes": _ALL},
    "g2-standard-12": {"cpus": 12, "memory_gib": 48, "accelerator": "NVIDIA_L4", "count": 1, "purposes": _ALL},
    "g2-standard-16": {"cpus": 16, "memory_gib": 64, "accelerator": "NVIDIA_L4", "count": 1, "purposes": _ALL},
    "g2-standard-24": {"cpus": 24, "memory_gib": 96, "accelerator": "NVIDIA_L4", "count": 2, "purposes": _ALL},
    "g2-standard-32": {"cpus": 32, "memory_gib": 128, "accelerator": "NVIDIA_L4", "count": 1, "purposes": _ALL},
    "g2-standard-48": {"cpus": 48, "memory_gib": 192, "accelerator": "NVIDIA_L4", "count": 4, "purposes": _ALL},
    "g2-standard-96": {"cpus": 96, "memory_gib": 384, "accelerator": "NVIDIA_L4", "count": 8, "purposes": _ALL},
    "a2-highgpu-1g": {"cpus": 12, "memory_gib": 85, "accelerator": "NVIDIA_TESLA_A100", "count": 1, "purposes": _ALL},
    "a2-highgpu-2g": {"cpus": 24, "memory_gib": 170, "accelerator": "NVIDIA_TESLA_A100", "count": 2, "purposes": _ALL},
    "a2-highgpu-4g": {"cpus": 48, "memory_gib": 340, "accelerator": "NVIDIA_TESLA_A100", "count": 4, "purposes": _ALL},
    "a2-highgpu-8g": {"cpus": 96, "memory_gib": 680, "accelerator": "NVIDIA_TESLA_A100", "count": 8, "purposes": _ALL},
    "a2-megagpu-16g": {
        "cpus": 96, "memory_gib": 1360, "accelerator": "NVIDIA_TESLA_A100", "count": 16, "purposes": ("training",),
    },
    "a2-ultragpu-1g": {"cpus": 12, "memory_gib": 170, "accelerator": "NVIDIA_A100_80GB", "count": 1, "purposes": _ALL},
    "a2-ultragpu-2g": {"cpus": 24, "memory_gib": 340, "accelerator": "NVIDIA_A100_80GB", "count": 2, "purposes": _ALL},
    "a2-ultragpu-4g": {"cpus": 48, "memory_gib": 680, "accelerator": "NVIDIA_A100_80GB", "count": 4, "purposes": _ALL},
    "a2-ultragpu-8g": {"cpus": 96, "memory_gib": 1360, "accelerator": "NVIDIA_A100_80GB", "count": 8, "purposes": _ALL},
    "a3-highgpu-8g": {"cpus": 208, "memory_gib": 1872, "accelerator": "NVIDIA_H100_80GB", "count": 8, "purposes": _ALL},
}

# --- GPUs attachable to N1 machines -------------------------------------------------------
# accelerator -> {GPU count: the most vCPUs an N1 machine may have with that many GPUs}.
# Source: cloud.google.com/compute/docs/gpus (N1 general-purpose GPU table); Vertex AI
# accelerator names from the MachineSpec.AcceleratorType enum (aiplatform v1 REST reference).
N1_ACCELERATORS: dict[str, dict[int, int]] = {
    "NVIDIA_TESLA_T4": {1: 48, 2: 48, 4: 96},
    "NVIDIA_TESLA_V100": {1: 12, 2: 24, 4: 48, 8: 96},
    "NVIDIA_TESLA_P100": {1: 16, 2: 32, 4: 96},
    "NVIDIA_TESLA_P4": {1: 24, 2: 48, 4: 96},
}

# What the automatic choice may pick (everything else is reachable through overrides):
# N2 for CPU work (current general-purpose series), the accelerator-optimized machines and
# N1 with T4s (the cheapest GPU) for GPU work; older GPUs only on request.
AUTO_CPU_SERIES = ("n2-standard", "n2-highmem", "n2-highcpu")
AUTO_N1_ACCELERATORS = ("NVIDIA_TESLA_T4",)

# Neutral size classes (spec/models.py SIZE_CLASSES) -> machine type per purpose. The GPU
# classes name accelerator-optimized machines, so the accelerator follows from the machine.
# tests/test_backend_gcp.py checks each entry meets its class and equals the automatic pick.
SIZE_CLASS_MACHINES: dict[str, dict[str, str]] = {
    "training": {
        "cpu-small": "n2-highmem-2",
        "cpu-medium": "n2-standard-4",
        "cpu-large": "n2-standard-8",
        "cpu-xlarge": "n2-standard-16",
        "gpu-small": "g2-standard-4",
        "gpu-large": "g2-standard-8",
        "gpu-x4": "g2-standard-48",
        "gpu-x8": "a2-ultragpu-8g",
    },
    "serving": {
        "cpu-small": "n2-standard-2",
        "cpu-medium": "n2-standard-4",
        "cpu-large": "n2-standard-8",
        "cpu-xlarge": "n2-standard-16",
        "gpu-small": "g2-standard-4",
        "gpu-large": "g2-standard-8",
        "gpu-x4": "g2-standard-48",
        "gpu-x8": "a2-ultragpu-8g",
    },
}
SIZE_CLASS_MACHINES["processing"] = SIZE_CLASS_MACHINES["training"]


@dataclass(frozen=True, order=True)
class MachineSpec:
    """What Vertex AI's MachineSpec takes: machineType, acceleratorType, acceleratorCount."""

    machine_type: str
    accelerator_type: Optional[str] = None
    accelerator_count: int = 0


@dataclass(frozen=True)
class Shape:
    cpus: int
    memory_gib: float
    gpus: int


def _list_of(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")
    return _SAME_AS.get(purpose, purpose)


def _series_of(machine_type: str) -> tuple[str, int] | None:
    series, _, size = machine_type.rpartition("-")
    if series in SERIES_MEMORY_PER_CPU and size.isdigit():
        return series, int(size)
    return None


def machine_types(purpose: str) -> list[str]:
    """Every machine type Vertex AI accepts for `purpose`, sorted."""
    key = _list_of(purpose)
    names = [f"{series}-{size}" for series, sizes in SERIES_SIZES[key].items() for size in sizes]
    names += [name for name, m in GPU_MACHINES.items() if key in m["purposes"]]
    return sorted(names)


def accelerator_types() -> list[str]:
    return sorted({*N1_ACCELERATORS, *(m["accelerator"] for m in GPU_MACHINES.values())})


def shape(spec: MachineSpec) -> Shape:
    """vCPUs, memory and GPUs of a (valid) machine spec."""
    if spec.machine_type in GPU_MACHINES:
        m = GPU_MACHINES[spec.machine_type]
        return Shape(m["cpus"], m["memory_gib"], m["count"])
    found = _series_of(spec.machine_type)
    if found is None:
        raise KeyError(spec.machine_type)
    series, size = found
    return Shape(size, size * SERIES_MEMORY_PER_CPU[series], spec.accelerator_count)


def spec_for_machine(machine_type: str) -> MachineSpec:
    """The spec of a machine type alone (accelerator-optimized ones bring their GPUs)."""
    m = GPU_MACHINES.get(machine_type)
    if m:
        return MachineSpec(machine_type, m["accelerator"], m["count"])
    return MachineSpec(machine_type)


# --- checks ---------------------------------------------------------------------------------
def _close(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_override(value: str, purpose: str) -> str | None:
    """None when `value` is a machine type Vertex AI accepts for `purpose`, else why not."""
    if value in machine_types(purpose):
        return None
    everywhere = {name for p in PURPOSES for name in machine_types(p)}
    if value in everywhere:
        others = [p for p in ("training", "serving") if value in machine_types(p)]
        return (
            f"GCP machine type {value!r} is not offered by Vertex AI for {purpose} "
            f"(only for {', '.join(others)})" + _close(value, machine_types(purpose))
        )
    return f"unknown GCP machine type {value!r} for Vertex AI {purpose}" + _close(value, machine_types(purpose))


def check_accelerator(value: str) -> str | None:
    """None when `value` is an accelerator type the catalog can pair with a machine."""
    if value in accelerator_types():
        return None
    return f"unknown or unsupported GCP accelerator type {value!r}" + _close(value, accelerator_types())


def check_pairing(machine_type: str, accelerator: str | None, count: int | None) -> str | None:
    """None when the accelerator (type, count) fits the machine type, else why not.

    Accelerator-optimized machines fix both (a2 comes with A100s, g2 with L4s, a3 with H100s);
    N1 takes T4/V100/P100/P4 in the listed counts, up to a vCPU limit; E2 and N2 take none.
    Both checks of the parts must have passed already.
    """
    fixed = GPU_MACHINES.get(machine_type)
    if fixed:
        if accelerator is not None and accelerator != fixed["accelerator"]:
            return f"{machine_type} comes with {fixed['accelerator']}, not {accelerator}"
        if count is not None and count != fixed["count"]:
            return f"{machine_type} comes with exactly {fixed['count']} x {fixed['accelerator']}, not {count}"
        return None
    if accelerator is None:
        return None if count is None else "an accelerator count needs an accelerator type"
    series = _series_of(machine_type)
    if series is None or not series[0].startswith("n1-"):
        family = machine_type.split("-", 1)[0]
        hosts = _hosts(accelerator)
        return f"{family} machines take no accelerators; {accelerator} runs on {hosts}"
    if accelerator not in N1_ACCELERATORS:
        return f"{accelerator} does not attach to N1 machines; it runs on {_hosts(accelerator)}"
    counts = N1_ACCELERATORS[accelerator]
    wanted = count or 1
    if wanted not in counts:
        return f"{accelerator} attaches to N1 machines in counts of {', '.join(map(str, counts))}, not {wanted}"
    if series[1] > counts[wanted]:
        return f"{wanted} x {accelerator} allows N1 machines of at most {counts[wanted]} vCPUs ({machine_type} has {series[1]})"
    return None


def _hosts(accelerator: str) -> str:
    if accelerator in N1_ACCELERATORS:
        return "n1 machines"
    families = sorted({name.rsplit("-", 1)[0] for name, m in GPU_MACHINES.items() if m["accelerator"] == accelerator})
    return ", ".join(f"{f}-* machines" for f in families) or "no machine in the catalog"


# --- the choice -----------------------------------------------------------------------------
def _candidates(purpose: str, gpus: int) -> list[MachineSpec]:
    key = _list_of(purpose)
    if gpus == 0:
        return [
            MachineSpec(f"{series}-{size}")
            for series in AUTO_CPU_SERIES
            for size in SERIES_SIZES[key].get(series, ())
        ]
    found = [spec_for_machine(name) for name, m in GPU_MACHINES.items() if key in m["purposes"]]
    for accelerator in AUTO_N1_ACCELERATORS:
        for count, max_cpus in N1_ACCELERATORS[accelerator].items():
            for series, sizes in SERIES_SIZES[key].items():
                if series.startswith("n1-"):
                    found += [MachineSpec(f"{series}-{s}", accelerator, count) for s in sizes if s <= max_cpus]
    return found


def _sort_key(spec: MachineSpec) -> tuple:
    s = shape(spec)
    return (s.gpus, s.cpus, s.memory_gib, spec.machine_type, spec.accelerator_type or "")


def choose(requirements: dict[str, int], purpose: str) -> MachineSpec | None:
    """The smallest automatic candidate meeting cpus, memory and gpus (fewest GPUs, vCPUs, GiB)."""
    need_cpus, need_mem, need_gpus = requirements["cpus"], requirements["memory_gib"], requirements["gpus"]
    fits = [
        spec
        for spec in _candidates(purpose, need_gpus)
        if (s := shape(spec)).cpus >= need_cpus and s.memory_gib >= need_mem and s.gpus >= need_gpus
    ]
    return min(fits, key=_sort_key) if fits else None


def override_spec(machine_type: str, accelerator: str | None = None, count: int | None = None) -> MachineSpec:
    """The spec an override names: accelerator-optimized machines bring their GPUs, and an
    accelerator type without a count means one."""
    base = spec_for_machine(machine_type)
    accelerator = accelerator or base.accelerator_type
    return MachineSpec(machine_type, accelerator, count or base.accelerator_count or (1 if accelerator else 0))


def _override_for(settings: Any, model: str | None, purpose: str) -> MachineSpec | None:
    if settings is None or model is None or purpose not in ("training", "serving"):
        return None
    override = settings.overrides.models.get(model)
    machine = getattr(override, f"{purpose}_machine_type", None) if override else None
    if not machine:
        return None
    return override_spec(
        machine, getattr(override, f"{purpose}_accelerator_type"), getattr(override, f"{purpose}_accelerator_count")
    )


def machine_spec(compute: Any, purpose: str, settings: Any = None, *, model: str | None = None) -> MachineSpec:
    """The Vertex AI machine spec for a neutral Compute and purpose.

    A per-model override (clouds.gcp.overrides.models.<model>) wins when `model` is given;
    a size class maps through SIZE_CLASS_MACHINES; explicit cpus/memory_gib/gpus pick the
    smallest automatic candidate that meets them. Raises CatalogMiss when nothing fits.
    """
    override = _override_for(settings, model, purpose)
    if override is not None:
        return override
    _list_of(purpose)
    if compute.size:
        return spec_for_machine(SIZE_CLASS_MACHINES[purpose][compute.size])
    needs = compute.requirements
    picked = choose(needs, purpose)
    if picked is not None:
        return picked
    raise CatalogMiss(
        f"GCP (Vertex AI) cannot serve {compute.label} for {purpose}: no machine type has that many "
        + ("GPUs, vCPUs and memory together" if needs["gpus"] else "vCPUs and memory"),
        hint=_miss_hint(needs, purpose),
    )


def instance_type(compute: Any, purpose: str, settings: Any = None, *, model: str | None = None) -> str:
    """The machine type alone (see machine_spec for the accelerator that goes with it)."""
    return machine_spec(compute, purpose, settings, model=model).machine_type


def _miss_hint(needs: dict[str, int], purpose: str) -> str:
    candidates = _candidates(purpose, needs["gpus"])
    if needs["gpus"]:
        enough_gpus = [c for c in candidates if shape(c).gpus >= needs["gpus"]]
        if not enough_gpus:
            most = max(candidates, key=lambda c: (shape(c).gpus, _sort_key(c)))
            return (
                f"Vertex AI {purpose} offers at most {shape(most).gpus} GPUs per machine ({most.machine_type}); "
                "ask for fewer GPUs per machine"
                + (" and use instance_count for more machines" if purpose != "serving" else " and scale out with replicas")
            )
        pool = enough_gpus
    else:
        pool = candidates
    largest = max(pool, key=lambda c: (shape(c).cpus, shape(c).memory_gib))
    s = shape(largest)
    return (
        f"the largest fitting choice is {largest.machine_type} ({s.cpus} vCPUs, {s.memory_gib:g} GiB"
        + (f", {s.gpus} x {largest.accelerator_type}" if s.gpus else "")
        + "); lower cpus/memory_gib, or set a machine type under clouds.gcp.overrides.models"
    )
