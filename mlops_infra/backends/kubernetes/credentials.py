"""Where pulumi-kubernetes (like kubectl) finds the cluster: a kubeconfig."""

from mlops_infra.backends.base import CredentialSources

CREDENTIALS = CredentialSources(
    env_groups=(("KUBECONFIG",),),
    files=(".kube/config",),
    login_hint="point KUBECONFIG at your cluster's kubeconfig (kind/k3d write ~/.kube/config; EKS: aws eks "
    "update-kubeconfig; GKE: gcloud container clusters get-credentials; AKS: az aks get-credentials) and name its "
    "context in clouds.kubernetes.context",
    error_markers=(
        "Unauthorized",
        "configured Kubernetes cluster is unreachable",
        "context was not found for specified context",
        "invalid configuration: no configuration has been provided",
    ),
)
