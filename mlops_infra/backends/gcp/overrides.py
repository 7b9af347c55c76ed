"""clouds.gcp.overrides: raw Vertex AI machine specs per model, checked against the catalog.

What an override names must exist (machine type, accelerator, a pairing Vertex AI accepts), must
override a section the model has, and should provide what the model's neutral compute asks for.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.gcp import catalog
from mlops_infra.backends.gcp.settings import GcpSettings
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding


def override_problems(spec: Any, settings: GcpSettings) -> list[Problem]:
    """clouds.gcp.overrides against the catalog and against the models they override."""
    problems: list[Problem] = []
    models = {m.name: m for m in spec.models}
    for name, override in settings.overrides.models.items():
        base = ("clouds", "gcp", "overrides", "models", name)
        for purpose in ("training", "serving"):
            problems += _override_problems(override, purpose, base, models.get(name))
    return problems


def _override_problems(override: Any, purpose: str, base: tuple, model: Any) -> list[Problem]:
    problems: list[Problem] = []
    machine = getattr(override, f"{purpose}_machine_type")
    accelerator = getattr(override, f"{purpose}_accelerator_type")
    count = getattr(override, f"{purpose}_accelerator_count")
    m_path = (*base, f"{purpose}_machine_type")
    a_path = (*base, f"{purpose}_accelerator_type")
    c_path = (*base, f"{purpose}_accelerator_count")
    valid = True
    if machine is not None and (message := catalog.check_override(machine, purpose)):
        problems.append(finding(m_path, message, hint=_list_hint(purpose), value=machine))
        valid = False
    if accelerator is not None and (message := catalog.check_accelerator(accelerator)):
        problems.append(
            finding(a_path, message, hint=f"one of: {', '.join(catalog.accelerator_types())}", value=accelerator)
        )
        valid = False
    if machine is None and (accelerator is not None or count is not None):
        path = a_path if accelerator is not None else c_path
        problems.append(
            finding(
                path,
                f"an accelerator override needs {purpose}_machine_type too",
                hint="GPUs belong to a machine type: name both (e.g. n1-standard-8 with NVIDIA_TESLA_T4, or g2-standard-8)",
                value=accelerator if accelerator is not None else count,
            )
        )
        valid = False
    if valid and machine is not None and (message := catalog.check_pairing(machine, accelerator, count)):
        problems.append(
            finding(
                a_path if accelerator is not None else c_path if count is not None else m_path,
                message,
                hint="a2 machines come with A100s, g2 with L4s, a3 with H100s; n1 takes T4, V100, P100 or P4",
            )
        )
        valid = False
    section = getattr(model, purpose, None) if model is not None else None
    if model is not None and machine is not None and section is None:
        problems.append(
            finding(
                m_path,
                f"model {model.name!r} has no {purpose} section: this override has no effect",
                hint=f"remove it, or add {purpose} to the model",
                value=machine,
                severity="warning",
            )
        )
    elif valid and section is not None and machine is not None:
        got = catalog.shape(catalog.override_spec(machine, accelerator, count))
        need = section.compute.requirements
        short = [
            f"{label} {have:g} < {want}"
            for label, have, want in (
                ("vCPUs", got.cpus, need["cpus"]),
                ("memory GiB", got.memory_gib, need["memory_gib"]),
                ("GPUs", got.gpus, need["gpus"]),
            )
            if have < want
        ]
        if short:
            problems.append(
                finding(
                    m_path,
                    f"override {machine} provides less than the model's {purpose} compute "
                    f"({section.compute.label}): {', '.join(short)}",
                    hint="the override wins; raise it or lower the compute requirement",
                    value=machine,
                    severity="warning",
                )
            )
    return problems


def _list_hint(purpose: str) -> str:
    names = catalog.machine_types(purpose)
    return f"Vertex AI {purpose} accepts {len(names)} machine types, e.g. {', '.join(names[:4])}, ... (see backends/gcp/catalog.py)"
