"""Azure backend: Key Vault, managed identities, Storage and Azure ML. Importing this loads no cloud SDK."""

from mlops_infra.backends.azure.backend import AzureBackend

BACKEND = AzureBackend()
