"""AWS training: per model, an ECR repository, a SageMaker pipeline, and optionally a one-off job.

Per model with `training`:
- ecr.Repository: where the model's training image lives when the spec names an image
  SageMaker cannot pull (anything but a private ECR image in the stack's region; see
  training_jobs.py). Immutable tags, scan on push, encrypted with the stack key, protected, tagged.
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

Registration. The RegisterModel step registers what an endpoint serving that version runs: the
serving image as the endpoint pulls it (jobs.pulled_image, the same for both), the serving
environment and instance type, and the run's model data (the Training step's model artifact,
under the model's output prefix, a model.tar.gz: what an endpoint pinned to that run with
serving.model_uri loads). A model with a registry but no serving section registers its
training image (validate warns).

Who runs what. The pipeline, its jobs and the one-off job run as the model's group identity
(governance.py, governance_grants.py): it reads only its group's data, writes only its models' artifacts,
may pass only itself to SageMaker and register only into its models' package groups; the
stack's "training" managed policy, which it attaches, lets it pull the stack's training images,
write its jobs' logs, run jobs named by the stack's prefix and use the key (also for EBS
volumes). A model whose image is in another ECR repository gets a pull grant on that repository
on its group's role. Automation only starts these pipelines (retraining.py).

Split specs: group identities and their grants are stack-wide and live in the shared stack; each
model stack holds its models' repositories, pipelines, one-off jobs and image pull grants, and
does not wait for the shared grants (they exist before it runs).

Training containers run with network isolation: they reach no network, including the
MLflow tracking server; SageMaker moves the inputs, outputs and checkpoints. With
governance.network: private the Training step (and the one-off job) gets the stack's VpcConfig
(governance_network.py), so that SageMaker moves them through the VPC's endpoints.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.backends.aws import training_evaluation as evaluation
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    bucket_name,
    evaluation_job_prefix,
    group_role_name,
    inline_policy_name,
    key_alias,
    job_prefix,
    model_package_group_name,
    pipeline_name,
    repository_name,
    stack_prefix,
)
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.naming import Namer
from mlops_infra.spec.models import Compute
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs
from mlops_infra.stages.training import (
    TrainingOutputs,
    checkpoint_prefix,
    output_prefix,
)

EVALUATION_REPOSITORY = "evaluation"  # the last word of a separate evaluation image's repository
CREATE_TIMEOUT_MARGIN = 3600  # seconds on top of a one-off job's longest run, should the provider wait for it
# CreateTrainingJob limits (botocore sagemaker shapes HyperParameterKey / HyperParameterValue,
# EnvironmentKey / EnvironmentValue).
HYPERPARAMETER_KEY_MAX = 256
HYPERPARAMETER_VALUE_MAX = 2500
ENVIRONMENT_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENVIRONMENT_MAX = 1024


def check(spec: Any, settings: Any) -> list[Problem]:
    """Images SageMaker cannot pull, and request fields it would reject."""
    namer = BACKEND.namer(spec, settings)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        training = model.training
        if training is None:
            continue
        path = ("models", i, "training")
        problems += image_problems(
            training.image, (*path, "image"), settings=settings, gap="models[].training.image",
            repository=repository_name(namer, model.name),
            says=f"SageMaker training pulls images only from Amazon ECR: this stack's pipeline trains "
            f"{model.name!r} with {{target}} (the stack's repository, same tag)")
        gate = training.evaluation
        if gate is not None and gate.image is not None:
            problems += image_problems(
                gate.image, (*path, "evaluation", "image"), settings=settings,
                gap="models[].training.evaluation.image",
                repository=repository_name(namer, model.name, EVALUATION_REPOSITORY),
                says=f"SageMaker Processing pulls images only from Amazon ECR: the evaluation gate of "
                f"{model.name!r} runs {{target}} (the stack's repository, same tag)")
        for key, value in training.hyperparameters.items():
            text = value if isinstance(value, str) else json.dumps(value)
            if len(key) > HYPERPARAMETER_KEY_MAX or len(text) > HYPERPARAMETER_VALUE_MAX:
                problems.append(finding(
                    (*path, "hyperparameters", key),
                    f"SageMaker takes hyperparameter names of at most {HYPERPARAMETER_KEY_MAX} and values of "
                    f"at most {HYPERPARAMETER_VALUE_MAX} characters",
                    hint="pass large settings as an input file instead", value=key,
                ))
        problems += check_environment(training.environment, path)
    return problems


def image_problems(image: str, path: tuple, *, settings: Any, gap: str, repository: str,
                   says: str) -> list[Problem]:
    """An image SageMaker pulls from the stack's `repository` (a warning `says`, whose {target}
    is the push target), or cannot pull at all (ECR in another region: the backend's gap `gap`)."""
    source = jobs.image_source(image, settings.region)
    if source.kind == "other-region":
        return [BACKEND.gap(gap, path, value=image)]
    if source.kind != "stack":
        return []
    target = jobs.push_target(partition=policies.partition_of(settings.region), region=settings.region,
                              repository=repository, reference=source.reference, account=settings.account_id)
    return [finding(
        path, says.format(target=target),
        hint=f"after `up`, copy the image there (docker pull, docker tag, docker push), or name a private ECR image "
        f"in {settings.region}",
        value=image, severity="warning",
    )]


def check_environment(environment: Any, path: tuple) -> list[Problem]:
    """SageMaker's limits on a job's or a model's environment variables."""
    return [
        finding(
            (*path, "environment", key),
            f"SageMaker takes environment variable names matching {ENVIRONMENT_KEY.pattern} and names "
            f"and values of at most {ENVIRONMENT_MAX} characters",
            hint="rename the variable (letters, digits, underscores; not starting with a digit)",
            value=key,
        )
        for key, value in environment.items()
        if not ENVIRONMENT_KEY.fullmatch(key) or len(key) > ENVIRONMENT_MAX or len(value) > ENVIRONMENT_MAX
    ]


def build(ctx: StageContext) -> TrainingOutputs:
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    registry = ctx.upstream.find(RegistryOutputs)
    network = ctx.upstream.find(PrivateNetwork)
    partition = policies.partition_of(region)
    own = [m for m in ctx.models() if m.training is not None]

    pipelines: dict[str, Any] = {}
    output_uris: dict[str, Any] = {}
    images: dict[str, Any] = {}
    for model in own:
        training = model.training
        assert training is not None  # trained models only
        identity = gov.reader(model)
        repo_name = repository_name(ctx.namer, model.name)
        repository = image_repository(ctx, model.name, repo_name)
        image = jobs.pulled_image(image=training.image, partition=partition, region=region,
                                  account=settings.account_id, repository=repo_name)
        pull = grants.image_pulls(model, "training", region)
        # A job starts at once: its role must hold its grants (the identity's principal waits for
        # the group's), and a pushed image needs its repository.
        waits = [repository, *ctx.prerequisites]
        if pull is not None:
            waits.append(aws.iam.RolePolicy(
                ctx.logical("imagegrant", model.name),
                name=inline_policy_name(ctx.namer, "training-image", model.name),
                role=identity.id,
                policy=json.dumps(pull),
                opts=ctx.opts(),
            ))

        def values(*, job_name: str, image: Any, role_arn: Any, key_arn: Any, artifacts: Any,
                   buckets: dict[str, Any], vpc: Any = None, model: Any = model) -> jobs.JobValues:
            return _job_values(model, job_name=job_name, image=image, role_arn=role_arn, key_arn=key_arn,
                               artifacts=artifacts, buckets=buckets,
                               instance_type=catalog.model_instance_type(model, "training", settings),
                               tags=ctx.tags(), vpc=vpc)

        refs = training.input_refs
        bucket_uris = {ref.bucket: storage.buckets[ref.bucket].uri for ref in refs}
        prefix = job_prefix(ctx.namer, model.name)
        registration = _registration(ctx.namer, settings, model)

        gate_image = _gate(ctx, model, image=image, identity=identity, waits=waits)

        def definition(resolved: list[Any], model: Any = model, prefix: str = prefix, image: str = image,
                       registration: Callable[[str], jobs.Registration] = registration,
                       names: tuple[str, ...] = tuple(bucket_uris), gate_image: str | None = gate_image) -> str:
            role_arn, key_arn, artifacts, group, vpc, *uris = resolved
            job = values(job_name=prefix, image=image, role_arn=role_arn, key_arn=key_arn, artifacts=artifacts,
                         buckets=dict(zip(names, uris)), vpc=vpc, model=model)
            reg = registration(group) if group else None
            document = jobs.pipeline_definition(job, reg)
            if gate_image is not None and reg is not None:
                document = evaluation.gated(
                    document, _gate_values(ctx, model, image=gate_image, role_arn=role_arn, key_arn=key_arn,
                                           artifacts=artifacts, package_group=group, vpc=vpc),
                    train_step=jobs.TRAIN_STEP, register_step=jobs.REGISTER_STEP)
            return json.dumps(document, sort_keys=True)

        name = pipeline_name(ctx.namer, model.name)
        pipeline = aws.sagemaker.Pipeline(
            ctx.logical("pipeline", model.name),
            pipeline_name=name,
            pipeline_display_name=name,
            pipeline_description=f"mlops-infra {spec.project}/{spec.environment}: trains {model.name}"
            + (" and registers it" if registry is not None and model.name in registry.registries else ""),
            role_arn=identity.principal,
            pipeline_definition=pulumi.Output.all(
                identity.principal, gov.key_id, storage.artifacts.uri,
                registry.registries[model.name] if registry is not None and model.name in registry.registries else "",
                network.vpc_config() if network is not None else None,
                *bucket_uris.values(),
            ).apply(definition),
            tags=ctx.tags(),
            opts=ctx.opts(depends_on=waits),
        )
        pipelines[model.name] = pipeline.arn
        if gate_image is not None:
            from mlops_infra.backends.aws.data_prep import failure_alarm

            failure_alarm(ctx, model=model.name, purpose="gate", pipeline=pipeline.arn,
                          what=f"{model.name}'s training pipeline (its evaluation gate included)")

        def output_uri(uri: str, m: str = model.name) -> str:
            return f"{uri}/{output_prefix(m)}"

        output_uris[model.name] = pulumi.Output.from_input(storage.artifacts.uri).apply(output_uri)
        images[model.name] = image

        if training.run_on_deploy:
            _one_off_job(ctx, model, values=values, prefix=prefix, image=image, role_arn=identity.principal,
                         key_arn=gov.key_id, artifacts=storage.artifacts.uri, bucket_uris=bucket_uris, waits=waits,
                         network=network)

    return TrainingOutputs(pipelines=pipelines, output_uris=output_uris, images=images)


def _gate(ctx: StageContext, model: Any, *, image: str, identity: Any, waits: list[Any]) -> str | None:
    """The image of a model's evaluation gate (None without one); its repository and its grant,
    which the pipeline waits for (appended to `waits`)."""
    import pulumi
    import pulumi_aws as aws

    gate = model.training.evaluation
    if gate is None or model.registry is None:
        return None
    settings, region = ctx.settings, ctx.settings.region
    partition = policies.partition_of(region)
    repository = None
    if gate.image is not None:
        name = repository_name(ctx.namer, model.name, EVALUATION_REPOSITORY)
        source = jobs.image_source(gate.image, region)
        if source.kind == "stack":
            waits.append(image_repository(ctx, f"{model.name}-{EVALUATION_REPOSITORY}", name))
            repository = jobs.repository_arn(partition, region, settings.account_id, name)
        else:
            repository = jobs.spec_repository_arn(partition, source)
        image = jobs.pulled_image(image=gate.image, partition=partition, region=region, account=settings.account_id,
                                  repository=name)
    groups = [model_package_group_name(ctx.namer, model.name)] if gate.compare_to_approved else []
    waits.append(aws.iam.RolePolicy(
        ctx.logical("evalgrant", model.name),
        name=inline_policy_name(ctx.namer, "evaluation", model.name),
        role=identity.id,
        policy=pulumi.Output.from_input(ctx.upstream.of(GovernanceOutputs).key_id).apply(
            lambda key: json.dumps(evaluation.gate_grants(
                partition=partition, region=region, account_id=settings.account_id,
                job_prefix=stack_prefix(ctx.namer, "aws.sagemaker.processing_job"), key_arn=key,
                package_groups=groups, repository=repository))),
        opts=ctx.opts(),
    ))
    return image


def _gate_values(ctx: StageContext, model: Any, *, image: str, role_arn: str, key_arn: str, artifacts: str,
                 package_group: str, vpc: Any) -> evaluation.Gate:
    gate = model.training.evaluation
    instance_type = catalog.instance_type(Compute.model_validate({"size": evaluation.EVALUATION_SIZE}), "processing", ctx.settings)
    return evaluation.Gate(
        job_name=evaluation_job_prefix(ctx.namer, model.name), image=image, command=tuple(gate.command),
        metric=gate.metric, threshold=gate.threshold, direction=gate.direction,
        compare_to_approved=gate.compare_to_approved, package_group=package_group, role_arn=role_arn,
        key_arn=key_arn, instance_type=instance_type,
        volume_encrypted=not catalog.has_instance_storage(instance_type),
        output=f"{artifacts}/{evaluation.evaluation_prefix(model.name)}", tags=tuple(sorted(ctx.tags().items())),
        vpc=vpc,
    )


def _registration(namer: Namer, settings: Any, model: Any) -> Callable[[str], jobs.Registration]:
    """group name -> what the model's pipeline registers into it (see the module docstring)."""
    partition = policies.partition_of(settings.region)
    serving = model.serving
    if serving is not None:
        image = jobs.pulled_image(image=serving.image, partition=partition, region=settings.region,
                                  account=settings.account_id, repository=repository_name(namer, model.name, "serving"))
        environment = dict(sorted(serving.environment.items()))
        instance_types = [catalog.model_instance_type(model, "serving", settings)]
    else:
        image = jobs.pulled_image(image=model.training.image, partition=partition, region=settings.region,
                                  account=settings.account_id, repository=repository_name(namer, model.name))
        environment, instance_types = {}, []

    def registration(group: str) -> jobs.Registration:
        return jobs.Registration(group=group, approval=model.registry.approval, image=image,
                                 environment=environment, instance_types=instance_types)

    return registration


def image_repository(ctx: StageContext, model: str, name: str) -> Any:
    """A model's ECR repository: immutable tags, scanned on push, encrypted with the stack key, protected;
    force-deletable (images and all) only in the teardown program `destroy --delete-data` runs first."""
    import pulumi_aws as aws

    gov = ctx.upstream.of(GovernanceOutputs)
    return aws.ecr.Repository(
        ctx.logical("repository", model),
        name=name,
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
        encryption_configurations=[{"encryption_type": "KMS", "kms_key": gov.key_id}],
        force_delete=ctx.teardown,
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )


def _job_values(
    model: Any, *, job_name: str, image: Any, role_arn: Any, key_arn: Any, artifacts: Any,
    buckets: dict[str, Any], instance_type: str, tags: dict[str, str], vpc: dict[str, Any] | None = None,
) -> jobs.JobValues:
    """A model's job values; `artifacts` and `buckets` are bucket URIs (s3://name), `vpc` a
    PrivateNetwork's vpc_config (or None)."""
    import pulumi

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
        vpc=None if vpc is None else (tuple(vpc["subnets"]), tuple(vpc["security_group_ids"])),
    )


def _one_off_job(
    ctx: StageContext, model: Any, *, values: Any, prefix: str, image: str, role_arn: Any, key_arn: Any,
    artifacts: Any, bucket_uris: dict[str, Any], waits: list[Any], network: PrivateNetwork | None,
) -> None:
    import pulumi_aws as aws

    settings = ctx.settings
    partition = policies.partition_of(settings.region)
    # The name hashes the definition as it is known before deployment: physical names stand
    # for the ARNs the cloud assigns (the same names always give the same ARNs), the key's alias
    # for the key. Tags stay out: they are updated in place.
    known = values(
        job_name=prefix,
        image=image,
        role_arn=policies.role_arn(partition, settings.account_id,
                                   group_role_name(ctx.namer, group_of(model), settings.region)),
        key_arn=key_alias(ctx.namer),
        artifacts=f"s3://{bucket_name(ctx.namer, ARTIFACTS)}",
        buckets={b: f"s3://{bucket_name(ctx.namer, b)}" for b in bucket_uris},
        vpc=network.vpc_config(known=True) if network is not None else None,
    )
    definition = {k: v for k, v in jobs.training_request(known).items() if k not in ("TrainingJobName", "Tags")}
    name = jobs.one_off_job_name(prefix, definition)
    real = values(job_name=name, image=image, role_arn=role_arn, key_arn=key_arn, artifacts=artifacts,
                  buckets=bucket_uris, vpc=network.vpc_config() if network is not None else None)
    longest = real.max_wait or real.max_runtime
    aws.sagemaker.TrainingJob(
        ctx.logical("job", model.name),
        **sdk_args(jobs.training_request(real)),
        tags=ctx.tags(),
        timeouts={"create": f"{longest + CREATE_TIMEOUT_MARGIN}s"},
        opts=ctx.opts(depends_on=waits),
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
