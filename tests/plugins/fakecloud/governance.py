"""FakeCloud governance: one key, one identity per workload role."""

from __future__ import annotations

from mlops_infra.backends.context import StageContext
from mlops_infra.stages.governance import IDENTITIES, GovernanceOutputs, Identity


def build(ctx: StageContext) -> GovernanceOutputs:
    from mlops_infra.backends.fakecloud.resources import Identity as IdentityResource
    from mlops_infra.backends.fakecloud.resources import Key

    key = Key(
        ctx.logical("key"),
        {"name": ctx.namer.name("fakecloud.key", "key"), "rotationDays": ctx.spec.governance.key_rotation_days,
         "tags": ctx.tags()},
        ctx.opts(protect=True),
    )
    identities = {}
    for role in IDENTITIES:
        made = IdentityResource(
            ctx.logical("identity", role),
            {"name": ctx.namer.name("fakecloud.identity", role), "tags": ctx.tags()},
            ctx.opts(),
        )
        identities[role] = Identity(role=role, id=made.urn, principal=made.urn)
    return GovernanceOutputs(key_id=key.urn, identities=identities)
