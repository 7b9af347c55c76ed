"""The inline policies the lifecycle stages add to a model group's identity, as validate measures them.

Features ("features"), data preparation ("dataprep"), explainability ("explainability") and the
evaluation gate ("evaluation-<model>") each put one inline policy on the group's role; IAM counts
them with the group's "data" policy against the per-role inline limit, so governance_grants.budgets
adds their sizes (measured with the key's ARN at full length and the longest VPC id). In a private
network they repeat the VPC grants only where no attached managed policy carries them
(governance_network.grants_of_group). No SDK here.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.aws import batch_jobs as batch
from mlops_infra.backends.aws import data_prep_jobs as prep
from mlops_infra.backends.aws import explainability_jobs as signals
from mlops_infra.backends.aws import features_sdk
from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import training_evaluation as evaluation
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    bucket_name,
    feature_group_name,
    model_package_group_name,
    repository_name,
    stack_prefix,
)
from mlops_infra.layout import group_of
from mlops_infra.naming import Namer
from mlops_infra.stages.storage import ARTIFACTS


def group_documents(spec: Any, namer: Namer, settings: Any, models: tuple[Any, ...], key_arn: str) -> list[dict]:
    """The lifecycle stages' inline policy documents on the role of the group holding `models`."""
    from mlops_infra.backends.aws.explainability import monitored

    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    artifacts = bucket_name(namer, ARTIFACTS)
    vpc = network.grants_of_group(spec, group_of(models[0]), network.measured_vpc(settings), region) \
        if network.private(spec) and models else None
    vpc_grants = tuple(network.network_grants(partition=partition, region=region, account_id=account,
                                              vpc_id=vpc)) if vpc else ()
    docs: list[dict] = []
    groups = {g.name: g for g in spec.feature_store.groups} if spec.feature_store else {}
    read = sorted({n for m in models for n in m.features if n in groups})
    if read:
        arn = features_sdk.group_arn_maker(partition=partition, region=region, account=account,
                                           name=lambda g: feature_group_name(namer, g))
        places = [features_sdk.offline_place(groups[n], artifacts=artifacts, physical=lambda b: bucket_name(namer, b))
                  for n in read]
        docs.append(features_sdk.reader_grant(partition=partition, groups=[arn(n) for n in read], places=places))
    prepared = [m for m in models if m.data_prep is not None]
    if prepared:
        docs.append(prep.prep_grants(
            partition=partition, region=region, account_id=account,
            job_prefix=stack_prefix(namer, "aws.sagemaker.processing_job"), key_arn=key_arn,
            outputs=sorted({(bucket_name(namer, m.data_prep.output.bucket), m.data_prep.output.prefix)
                            for m in prepared}),
            repository=jobs.repository_arn(partition, region, account,
                                           f"{stack_prefix(namer, 'aws.ecr.repository')}*-prep"),
            network=vpc_grants))
    watched = sorted(m.name for m in models if monitored(m, region))
    if watched:
        docs.append(signals.signal_grants(partition=partition, region=region, account_id=account,
                                          artifacts=artifacts, models=watched, key_arn=key_arn, network=vpc_grants))
    for model in models:
        gate = model.training.evaluation if model.training is not None else None
        if gate is None or model.registry is None:
            continue
        repository = None
        if gate.image is not None:
            repository = jobs.repository_arn(partition, region, account,
                                             repository_name(namer, model.name, "evaluation"))
        docs.append(evaluation.gate_grants(
            partition=partition, region=region, account_id=account,
            job_prefix=stack_prefix(namer, "aws.sagemaker.processing_job"), key_arn=key_arn,
            package_groups=[model_package_group_name(namer, model.name)] if gate.compare_to_approved else [],
            repository=repository))
    return docs


def automation_documents(spec: Any, namer: Namer, settings: Any) -> list[dict]:
    """The inline policies batch scoring ("batch") and data preparation ("dataprep") add to the
    automation identity besides retraining's: each starts its own stage's pipelines only."""
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    pipelines = stack_prefix(namer, "aws.sagemaker.pipeline")
    docs: list[dict] = []
    if any(m.batch is not None for m in spec.models):
        docs.append(batch.automation_grant(partition=partition, region=region, account_id=account, pipelines=pipelines))
    if any(m.data_prep is not None for m in spec.models):
        docs.append(prep.start_grant(triggers.pipeline_arn(partition, region, account, f"{pipelines}*-prep")))
    return docs
