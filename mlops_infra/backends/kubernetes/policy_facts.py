"""What the policy rules need to know about Kubernetes plans (pure data, no SDK).

A namespace has no encryption or audit setting of its own (both are the API server's, cluster-wide;
validate warns), so those rules have nothing to require here. Grants are RBAC rules: any string
"*" (a wildcard verb, resource or API group) and the built-in all-powerful roles are refused.
"""

from __future__ import annotations

from mlops_infra.policy.facts import CloudFacts

FACTS = CloudFacts(
    stateful=frozenset({"kubernetes:core/v1:PersistentVolumeClaim"}),
    encryption=(),
    public_access=(),
    public_principals=("system:anonymous", "system:unauthenticated"),
    broad_roles=(r"^\*$", r"^cluster-admin$", r"^system:masters$"),
    audit=(),
    gpus={"nvidia.com/gpu": 1},
)
