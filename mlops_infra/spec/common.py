"""The spec's building blocks that every part uses: strict models, compute and data locations."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_infra.spec.types import HintedValueError, ResourceName

SIZE_CLASSES: dict[str, dict[str, int]] = {
    # Neutral size classes: what a workload needs, not what a cloud sells.
    "cpu-small": {"cpus": 2, "memory_gib": 8, "gpus": 0},
    "cpu-medium": {"cpus": 4, "memory_gib": 16, "gpus": 0},
    "cpu-large": {"cpus": 8, "memory_gib": 32, "gpus": 0},
    "cpu-xlarge": {"cpus": 16, "memory_gib": 64, "gpus": 0},
    "gpu-small": {"cpus": 4, "memory_gib": 16, "gpus": 1},
    "gpu-large": {"cpus": 8, "memory_gib": 32, "gpus": 1},
    "gpu-x4": {"cpus": 48, "memory_gib": 192, "gpus": 4},
    "gpu-x8": {"cpus": 96, "memory_gib": 768, "gpus": 8},
}
SizeClass = Literal[
    "cpu-small", "cpu-medium", "cpu-large", "cpu-xlarge", "gpu-small", "gpu-large", "gpu-x4", "gpu-x8"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Compute(Strict):
    """A size class, or explicit cpus / memory / gpus (not both)."""

    size: Optional[SizeClass] = Field(None, description="neutral size class")
    cpus: Optional[int] = Field(None, ge=1, le=192, description="minimum vCPUs")
    memory_gib: Optional[int] = Field(None, ge=1, le=2048, description="minimum memory in GiB")
    gpus: int = Field(0, ge=0, le=16, description="number of GPUs")
    instance_count: int = Field(1, ge=1, le=100, description="instances per job (training only)")

    @model_validator(mode="after")
    def _one_way(self) -> "Compute":
        explicit = self.cpus is not None or self.memory_gib is not None
        if self.size and (explicit or self.gpus):
            raise HintedValueError(
                "give either size or cpus/memory_gib/gpus, not both", hint="keep size, or remove it and keep the numbers"
            )
        if not self.size and not (self.cpus and self.memory_gib):
            raise HintedValueError(
                "give a size class or both cpus and memory_gib",
                hint="size classes: " + ", ".join(SIZE_CLASSES) + "; or {cpus: 8, memory_gib: 32}",
            )
        return self

    @property
    def requirements(self) -> dict[str, int]:
        if self.size:
            return dict(SIZE_CLASSES[self.size])
        return {"cpus": self.cpus or 0, "memory_gib": self.memory_gib or 0, "gpus": self.gpus}

    @property
    def label(self) -> str:
        if self.size:
            return self.size
        text = f"{self.cpus} cpus / {self.memory_gib} GiB"
        return text + (f" / {self.gpus} gpus" if self.gpus else "")


class DataRef(Strict):
    bucket: ResourceName = Field(description="a bucket from storage.buckets")
    prefix: str = Field(
        "", max_length=512, pattern=r"^([A-Za-z0-9._=-]+/)*$", description="object prefix ending in '/'; empty: all"
    )
