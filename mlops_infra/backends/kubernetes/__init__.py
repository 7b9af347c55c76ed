"""Kubernetes backend: KServe, the Prometheus Operator and MLflow on any cluster. Importing this loads no SDK."""

from mlops_infra.backends.kubernetes.backend import KubernetesBackend

BACKEND = KubernetesBackend()
