"""What the policy rules need to know about Kubernetes plans (pure data, no SDK).

A namespace has no encryption or audit setting of its own (both are the API server's, cluster-wide;
validate warns), so those rules have nothing to require here. Grants are RBAC rules: any string
"*" (a wildcard verb, resource or API group) and the built-in all-powerful roles are refused.
Services stay inside the cluster (ClusterIP); no binding names the anonymous or unauthenticated user.
"""

from __future__ import annotations

from mlops_infra.policy.facts import CloudFacts, Require

SERVICE = "kubernetes:core/v1:Service"

FACTS = CloudFacts(
    stateful=frozenset({"kubernetes:core/v1:PersistentVolumeClaim"}),
    encryption=(),
    public_access=(
        Require(SERVICE, "spec.type", "ClusterIP", why="a NodePort or LoadBalancer Service is reachable from outside the cluster"),
    ),
    public_principals=("system:anonymous", "system:unauthenticated"),
    broad_roles=(r"^\*$", r"^cluster-admin$", r"^system:masters$"),
    audit=(),
    gpus={"nvidia.com/gpu": 1},
)
