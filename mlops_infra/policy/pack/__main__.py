"""Entry point the Pulumi CLI runs for the mlops-infra policy pack (see policy/pack_adapter.py)."""

import os
from pathlib import Path

from pulumi_policy import PolicyPack

from mlops_infra.policy.pack_adapter import CONTEXT_VAR, PACK_NAME, build_policies, load_context

spec, cloud, policies = load_context(Path(os.environ[CONTEXT_VAR]))
PolicyPack(name=PACK_NAME, policies=build_policies(spec=spec, cloud=cloud, policies=policies))
