"""GCP backend: Cloud Storage, Cloud KMS, IAM and Vertex AI. Importing this loads no cloud SDK."""

from mlops_infra.backends.gcp.backend import GcpBackend

BACKEND = GcpBackend()
