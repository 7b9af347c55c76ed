"""What GCP stages hand each other besides their neutral outputs: typed, read by class.

A stage shares a value with `ctx.share(value)` (or, for resources that must stay in their own
stack, `ctx.upstream.add(value)`), and a later stage reads it with `ctx.upstream.of(Kind)` when
it always exists, `ctx.upstream.find(Kind)` when the spec may not ask for it.

Two kinds of values:
- ProjectServices holds Outputs and constants only: the governance stage shares it, and in a
  split spec it crosses from the shared stack to the model stacks (mlops_infra/wire.py).
- The others hold resources that a later stage of the same stack waits for (depends_on)
  because it names the resource instead of taking one of its outputs. Resources never cross
  stacks: in a model stack of a split spec the stack-wide ones are absent (`find` gives None)
  and the shared stack, deployed first, already holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProjectServices:
    """The governance stage's project-level facts every later stage uses.

    service_keys[api]: the key path, available once that API's service agent may use it (what
    the API encrypts takes the key from here, so it waits for the grant); service_agents[api]:
    the agent's IAM member ("storage": Cloud Storage's, "monitoring" when drift alerts go to
    Pub/Sub); roles[name]: projects/P/roles/ID of each custom role (roles.py).
    """

    key_ring_id: Any
    service_keys: dict[str, Any]
    service_agents: dict[str, Any]
    roles: dict[str, Any]


@dataclass(frozen=True)
class WorkerGrants:
    """Governance: each model group's worker-role grant on the project (drift schedules wait)."""

    by_group: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectGrants:
    """Storage: who may read or write which bucket or managed folder (endpoints wait for theirs).

    Keyed by grants.grant_key(location, principal): location is a spec bucket name ("raw") or
    a managed folder in it ("artifacts/models/m/")."""

    by_key: dict[tuple[str, str], Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRepositories:
    """Training: each trained model's Artifact Registry repository (serving grants wait for it)."""

    by_model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptureDatasets:
    """Serving: each capturing model's BigQuery dataset (drift tables and grants wait for it)."""

    by_model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployedModels:
    """Serving: each served model's DeployedModel (its explainability monitor waits for it)."""

    by_model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftTopics:
    """Monitoring: each drift-retrained model's Pub/Sub topic (its Eventarc trigger waits for it)."""

    by_model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrivateNetwork:
    """Governance, with governance.network: private: the network Vertex AI work uses
    (governance_network.py). Outputs and constants only: it crosses to split model stacks.

    network: projects/P/global/networks/NAME; name: NAME; peering_ranges: the reserved ranges
    custom jobs take their addresses from (empty for a brought network, whose private services
    access is its owner's); subnet: the created subnet (None when brought)."""

    network: Any
    name: Any
    peering_ranges: list[Any] = field(default_factory=list)
    subnet: Any = None


@dataclass(frozen=True)
class PushGrant:
    """Governance, when private schedules go through Pub/Sub: the Pub/Sub agent's token grant on
    the automation identity, which every Eventarc trigger of the stack waits for."""

    grant: Any
