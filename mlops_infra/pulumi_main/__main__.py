"""`main: mlops_infra/pulumi_main/` in Pulumi.yaml runs this."""

from mlops_infra.pulumi_main import run

run()
