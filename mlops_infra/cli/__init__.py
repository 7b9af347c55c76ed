"""The `mlops-infra` command. Importing this loads click only: no pydantic models, no SDKs."""

from mlops_infra.cli.main import main

__all__ = ["main"]
