"""AWS training: per model, an ECR repository, a SageMaker pipeline, and optionally a one-off job.

Per model with `training`:
- ecr.Repository: where the model's training image lives when the spec names an image
  SageMaker cannot pull (anything but a private ECR image in the stack's region; see
  jobs.py). Immutable tags, scan on push, encrypted with the stack key, protected, tagged.
  It exists even when the spec names an ECR image, so that switching between an external
  image and a pushed one never tries to delete a protected repository.
- sagemaker.Pipeline: the repeatable training definition that retraining starts, rendered
  from templates/aws/pipeline.json.j2: a Training step (image, instance type from the
  catalog or clouds.aws.overrides, instance count, EBS volume encrypted with the stack key,
  output to s3://<artifacts>/models/<model>/ encrypted with the stack key, inputs as File
  channels, max runtime, network isolation, inter-container encryption, hyperparameters
  and environment; spot: managed spot training, max wait and checkpoints under
  s3://<artifacts>/checkpoints/<model>/), then, with a registry, a RegisterModel step into
  the model's package group with the spec's approval mode.
- sagemaker.TrainingJob, with `run_on_deploy: true`: one run of the same request, named
  <job prefix>-<hash of its definition> (a training job is immutable: any change is a new
  job; identical definitions keep their name, so redeploying does not retrain).

Who runs what. The pipeline runs as the training identity, which is also the role its jobs
run as: the pipeline needs to pass a role to the jobs it starts, so running it as the
automation identity would mean giving automation iam:PassRole on the training role and
SageMaker job permissions, and trusting SageMaker. Instead the training role gets (one inline
policy for the stack, named by the stack's prefix so that it keeps its size and stays unchanged
when models are added): create / describe / stop only training jobs whose names start with the
stack's prefix, create model packages in the stack's groups, pass itself to SageMaker
(iam:PassedToService), pull from the stack's training repositories, write its jobs' log
streams; plus, per model whose image is in another ECR repository, a pull grant on that
repository. Automation will only need sagemaker:StartPipelineExecution on these pipelines
(retraining issue).
S3 reads and writes come from the storage stage's grant, key use from governance's, plus
kms:CreateGrant (for AWS resources only) when a job has an EBS volume to encrypt.

Split specs: the stack's grants (training, training-volumes) are stack-wide and live in the
shared stack; each model stack holds its models' repositories, pipelines, one-off jobs and
image pull grants, and does not wait for the shared grants (they exist before it runs).

Training containers run with network isolation: they reach no network, including the
MLflow tracking server; SageMaker moves the inputs, outputs and checkpoints.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from mlops_infra.backends.aws import catalog, jobs, policies
from mlops_infra.backends.aws.naming import (
    bucket_name,
    inline_policy_name,
    job_prefix,
    pipeline_name,
    repository_name,
    role_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs
from mlops_infra.stages.training import (
    TrainingOutputs,
    checkpoint_prefix,
    output_prefix,
)

CREATE_TIMEOUT_MARGIN = 3600  # seconds on top of a one-off job's longest run, should the provider wait for it


def build(ctx: StageContext) -> TrainingOutputs:
    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    gov: GovernanceOutputs = ctx.upstream["governance"]
    storage: StorageOutputs = ctx.upstream["storage"]
    registry = ctx.upstream.get("registry")
    partition = policies.partition_of(region)
    account_id = pulumi.Output.from_input(gov.extra["account_id"])
    training_role = gov.identities["training"]
    trained = [m for m in spec.models if m.training is not None]

    # Each model's image source. The training grant names the stack's own repositories by
    # pattern; a model whose image is in another ECR repository gets its own pull grant.
    sources = {m.name: jobs.image_source(m.training.image, region) for m in spec.models if m.training is not None}
    instance_types = {m.name: _instance_type(m, settings) for m in trained}
    # Stack-wide grants, decided from every model so that all stacks of a split agree. A model
    # stack does not wait for them: the shared stack holding them is deployed first.
    grants = (_stack_grants(ctx, trained, instance_types, partition=partition, account_id=account_id)
              if ctx.builds_stack else [])
    own = [m for m in ctx.models() if m.training is not None]
    image_grants: dict[str, Any] = {}
    for model in own:
        repository_arn = jobs.spec_repository_arn(partition, sources[model.name])
        if repository_arn is not None:
            image_grants[model.name] = aws.iam.RolePolicy(
                ctx.logical("imagegrant", model.name),
                name=inline_policy_name(ctx.namer, "training-image", model.name),
                role=training_role.id,
                policy=json.dumps(jobs.image_pull_grant(repository_arn, "PullTrainingImage")),
                opts=ctx.opts(),
            )

    pipelines: dict[str, Any] = {}
    output_uris: dict[str, Any] = {}
    images: dict[str, Any] = {}
    for model in own:
        training = model.training
        assert training is not None  # trained models only
        source = sources[model.name]
        repo_name = repository_name(ctx.namer, model.name)
        own_grants = ctx.waits(grants, image_grants.get(model.name))
        repository = image_repository(ctx, model.name, repo_name)
        if source.kind == "stack":

            def stack_image(url: str, ref: str = source.reference) -> str:
                return f"{url}{ref}"

            image: Any = repository.repository_url.apply(stack_image)
        else:  # a private ECR image (another region is a validation error)
            image = training.image

        def values(*, job_name: str, image: Any, role_arn: Any, key_arn: Any, artifacts: Any,
                   buckets: dict[str, Any], model: Any = model) -> jobs.JobValues:
            return _job_values(model, job_name=job_name, image=image, role_arn=role_arn, key_arn=key_arn,
                               artifacts=artifacts, buckets=buckets, instance_type=instance_types[model.name],
                               tags=ctx.tags())

        refs = training.input_refs
        bucket_uris = {ref.bucket: storage.buckets[ref.bucket].uri for ref in refs}
        prefix = job_prefix(ctx.namer, model.name)
        registration = _registration(model, registry)

        def definition(resolved: list[Any], model: Any = model, prefix: str = prefix,
                       names: tuple[str, ...] = tuple(bucket_uris)) -> str:
            role_arn, key_arn, image_uri, artifacts, group, *uris = resolved
            job = values(job_name=prefix, image=image_uri, role_arn=role_arn, key_arn=key_arn, artifacts=artifacts,
                         buckets=dict(zip(names, uris)), model=model)
            reg = jobs.Registration(group=group, approval=model.registry.approval) if group else None
            return json.dumps(jobs.pipeline_definition(job, reg), sort_keys=True)

        name = pipeline_name(ctx.namer, model.name)
        pipeline = aws.sagemaker.Pipeline(
            ctx.logical("pipeline", model.name),
            pipeline_name=name,
            pipeline_display_name=name,
            pipeline_description=f"mlops-infra {spec.project}/{spec.environment}: trains {model.name}"
            + (" and registers it" if registration is not None else ""),
            role_arn=training_role.principal,
            pipeline_definition=pulumi.Output.all(
                training_role.principal, gov.key_id, image, storage.artifacts.uri, registration or "",
                *bucket_uris.values(),
            ).apply(definition),
            tags=ctx.tags(),
            opts=ctx.opts(depends_on=[*own_grants, *ctx.prerequisites]),
        )
        pipelines[model.name] = pipeline.arn

        def output_uri(uri: str, m: str = model.name) -> str:
            return f"{uri}/{output_prefix(m)}"

        output_uris[model.name] = pulumi.Output.from_input(storage.artifacts.uri).apply(output_uri)
        images[model.name] = image

        if training.run_on_deploy:
            _one_off_job(ctx, model, values=values, prefix=prefix, source=source, repo_name=repo_name,
                         partition=partition, image=image, role_arn=training_role.principal, key_arn=gov.key_id,
                         artifacts=storage.artifacts.uri, bucket_uris=bucket_uris, grants=own_grants)

    return TrainingOutputs(pipelines=pipelines, output_uris=output_uris, images=images)


def _stack_grants(ctx: StageContext, trained: list[Any], instance_types: dict[str, str], *, partition: str,
                  account_id: Any) -> list[Any]:
    """The training role's inline policies for the whole stack (see the module docstring)."""
    region = ctx.settings.region
    gov: GovernanceOutputs = ctx.upstream["governance"]
    training_role = gov.identities["training"]
    scope = jobs.training_scope(ctx.namer, registers=any(m.registry for m in trained))

    def grant_document(values: list[Any]) -> str:
        account, role = values
        return json.dumps(jobs.training_grants(partition=partition, region=region, account_id=account,
                                               role_name=role, scope=scope))

    grants = [
        aws.iam.RolePolicy(
            ctx.logical("grant", "training"),
            name=inline_policy_name(ctx.namer, "training"),
            role=training_role.id,
            policy=pulumi.Output.all(account_id, training_role.id).apply(grant_document),
            opts=ctx.opts(),
        )
    ]
    if any(not catalog.has_instance_storage(t) for t in instance_types.values()):
        grants.append(volume_key_policy(ctx, "training-volumes"))
    return grants


def image_repository(ctx: StageContext, model: str, name: str) -> Any:
    """A model's ECR repository: immutable tags, scanned on push, encrypted with the stack key, protected."""
    gov: GovernanceOutputs = ctx.upstream["governance"]
    return aws.ecr.Repository(
        ctx.logical("repository", model),
        name=name,
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
        encryption_configurations=[{"encryption_type": "KMS", "kms_key": gov.key_id}],
        force_delete=False,
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )


def volume_key_policy(ctx: StageContext, policy: str) -> Any:
    """The training role may let EBS encrypt job volumes with the stack key (jobs.volume_key_grant)."""
    gov: GovernanceOutputs = ctx.upstream["governance"]
    return aws.iam.RolePolicy(
        ctx.logical("keygrant", "training"),
        name=inline_policy_name(ctx.namer, policy),
        role=gov.identities["training"].id,
        policy=pulumi.Output.from_input(gov.key_id).apply(lambda arn: json.dumps(jobs.volume_key_grant(arn))),
        opts=ctx.opts(),
    )


def _instance_type(model: Any, settings: Any) -> str:
    override = settings.overrides.models.get(model.name)
    if override is not None and override.training_instance_type:
        return override.training_instance_type
    return catalog.instance_type(model.training.compute, "training", settings)


def _registration(model: Any, registry: Any) -> Any:
    """The model's package group name (an Output) when it has a registry."""
    if model.registry is None or registry is None:
        return None
    return registry.registries[model.name]


def _job_values(
    model: Any, *, job_name: str, image: Any, role_arn: Any, key_arn: Any, artifacts: Any,
    buckets: dict[str, Any], instance_type: str, tags: dict[str, str],
) -> jobs.JobValues:
    """A model's job values; `artifacts` and `buckets` are bucket URIs (s3://name)."""
    training = model.training
    spot_wait = jobs.max_wait_seconds(training)

    def under(base: Any, prefix: str) -> Any:
        if isinstance(base, pulumi.Output):
            return base.apply(lambda uri: f"{uri}/{prefix}")
        return f"{base}/{prefix}"

    return jobs.JobValues(
        job_name=job_name,
        image=image,
        role_arn=role_arn,
        key_arn=key_arn,
        instance_type=instance_type,
        instance_count=training.compute.instance_count,
        volume_encrypted=not catalog.has_instance_storage(instance_type),
        max_runtime=int(training.max_runtime),
        max_wait=spot_wait,
        channels=tuple((c.name, under(buckets[c.bucket], c.prefix)) for c in jobs.channels(training.input_refs)),
        output_uri=under(artifacts, output_prefix(model.name)),
        checkpoint_uri=under(artifacts, checkpoint_prefix(model.name)) if spot_wait is not None else None,
        hyperparameters=tuple(jobs.hyperparameter_strings(training.hyperparameters).items()),
        environment=tuple(sorted(training.environment.items())),
        tags=tuple(sorted(tags.items())),
    )


def _one_off_job(
    ctx: StageContext, model: Any, *, values: Any, prefix: str, source: jobs.ImageSource, repo_name: str,
    partition: str, image: Any, role_arn: Any, key_arn: Any, artifacts: Any, bucket_uris: dict[str, Any],
    grants: list[Any],
) -> None:
    region = ctx.settings.region
    # The name hashes the definition as it is known before deployment: physical names stand
    # for the ARNs and URLs the cloud assigns (the same names always give the same ARNs).
    # Tags stay out: they are updated in place.
    placeholder_image = (
        jobs.push_target(partition=partition, region=region, repository=repo_name, reference=source.reference)
        if source.kind == "stack" else model.training.image
    )
    known = values(
        job_name=prefix,
        image=placeholder_image,
        role_arn=f"arn:{partition}:iam::{jobs.ACCOUNT_PLACEHOLDER}:role/{role_name(ctx.namer, 'training', region)}",
        key_arn=ctx.upstream["governance"].extra["key_alias"],
        artifacts=f"s3://{bucket_name(ctx.namer, ARTIFACTS)}",
        buckets={b: f"s3://{bucket_name(ctx.namer, b)}" for b in bucket_uris},
    )
    definition = {k: v for k, v in jobs.training_request(known).items() if k not in ("TrainingJobName", "Tags")}
    name = jobs.one_off_job_name(prefix, definition)
    real = values(job_name=name, image=image, role_arn=role_arn, key_arn=key_arn, artifacts=artifacts,
                  buckets=bucket_uris)
    longest = real.max_wait or real.max_runtime
    aws.sagemaker.TrainingJob(
        ctx.logical("job", model.name),
        **sdk_args(jobs.training_request(real)),
        tags=ctx.tags(),
        timeouts={"create": f"{longest + CREATE_TIMEOUT_MARGIN}s"},
        # The job starts at once: its role must already hold its grants.
        opts=ctx.opts(depends_on=[*grants, *ctx.prerequisites]),
    )


# --- CreateTrainingJob request -> pulumi-aws TrainingJob arguments -------------------
_PLURAL = {"InputDataConfig": "input_data_configs"}  # lists the SDK names in the plural
_MAPS = ("HyperParameters", "Environment")  # user keys: kept as written


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", key).lower()


def _convert(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(k): _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value


def sdk_args(request: dict[str, Any]) -> dict[str, Any]:
    """TrainingJob keyword arguments for a CreateTrainingJob request (Tags are passed separately)."""
    out: dict[str, Any] = {}
    for key, value in request.items():
        if key == "Tags":
            continue
        out[_PLURAL.get(key, _snake(key))] = value if key in _MAPS else _convert(value)
    return out
