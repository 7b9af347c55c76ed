"""AWS: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_infra.backends import checks
from mlops_infra.backends.aws import catalog, jobs, policies
from mlops_infra.backends.aws.naming import (
    STYLES,
    bucket_name,
    job_prefix,
    model_package_group_name,
    repository_name,
    role_name,
)
from mlops_infra.backends.aws.settings import AwsSettings
from mlops_infra.backends.base import Backend
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS, data_reads
from mlops_infra.tagging import stack_tags

# The override field of each purpose a model's compute is used for.
OVERRIDE_FIELDS = {"training": "training_instance_type", "serving": "serving_instance_type"}
# S3 Glacier Flexible Retrieval bills every object for at least 90 days (S3 pricing,
# "minimum storage duration"); expiring sooner after archiving is charged as if kept 90 days.
GLACIER_MINIMUM_DAYS = 90
# CreateTrainingJob limits (botocore sagemaker shapes HyperParameterKey / HyperParameterValue,
# EnvironmentKey / EnvironmentValue).
HYPERPARAMETER_KEY_MAX = 256
HYPERPARAMETER_VALUE_MAX = 2500
ENVIRONMENT_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENVIRONMENT_MAX = 1024


class AwsBackend(Backend):
    name = "aws"
    display_name = "AWS"
    sdk_package = "pulumi_aws"
    settings_model = AwsSettings
    naming_styles = STYLES
    settings_example = "clouds: {aws: {region: us-east-1}}"
    unsupported = {
        "serving": "not implemented yet on AWS (SageMaker endpoints arrive with the serving issue)",
        "monitoring": "not implemented yet on AWS (CloudWatch alarms arrive with the monitoring issue)",
        "retraining": "not implemented yet on AWS (EventBridge triggers arrive with the monitoring issue)",
    }

    def name_scope(self, settings: AwsSettings) -> str:
        return settings.region

    # --- validation ---------------------------------------------------------
    def check(self, spec: Any, settings: AwsSettings | None) -> list[Problem]:
        if settings is None:
            return []
        overrides = settings.overrides.models
        problems = checks.unknown_override_models(spec, self.name, overrides)
        problems += self._check_overrides(spec, settings)
        problems += checks.compute_misses(
            spec,
            overridden=lambda model, purpose: bool(
                model.name in overrides and getattr(overrides[model.name], OVERRIDE_FIELDS[purpose])
            ),
            resolve=lambda compute, purpose: catalog.instance_type(compute, purpose, settings),
        )
        problems += checks.no_scale_to_zero(
            spec,
            service="SageMaker real-time endpoints",
            hint="set min_replicas: 1 (scale-to-zero needs inference components, not supported yet)",
        )
        problems += checks.archive_minimum(spec, minimum_days=GLACIER_MINIMUM_DAYS, tier="S3 Glacier", cloud="AWS")
        problems += self._check_policy_size(spec, settings)
        problems += self._check_training(spec, settings)
        problems += checks.private_network_has_no_effect(
            spec,
            message="network: private has no effect on AWS yet: no VPC, subnets or endpoints are created",
            hint="resources stay reachable through public AWS endpoints (IAM still applies); "
            "VPC support is not implemented yet (training containers already run network-isolated)",
        )
        return problems

    def _check_overrides(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        problems: list[Problem] = []
        names = [m.name for m in spec.models]
        for model_name, override in settings.overrides.models.items():
            base = ("clouds", "aws", "overrides", "models", model_name)
            if model_name not in names:
                continue  # reported by checks.unknown_override_models
            model = spec.model(model_name)
            for purpose, field in OVERRIDE_FIELDS.items():
                value = getattr(override, field)
                if value is None:
                    continue
                path = (*base, field)
                message = catalog.check_override(value, purpose)
                if message:
                    problems.append(
                        finding(path, message, hint=f"see the {catalog.PURPOSE_ENUMS[purpose]} list in the "
                                "SageMaker API reference", value=value)
                    )
                    continue
                stage = getattr(model, purpose)
                if stage is None:
                    problems.append(
                        finding(path, f"model {model_name!r} has no {purpose} section, so this override has no effect",
                                hint=f"remove it, or add models[].{purpose}", value=value, severity="warning")
                    )
                    continue
                shortfall = _shortfall(value, stage.compute)
                if shortfall:
                    problems.append(
                        finding(path, f"{value} offers less than models[{names.index(model_name)}].{purpose}.compute "
                                f"asks for ({shortfall})", hint="the override wins; check that the workload fits",
                                value=value, severity="warning")
                    )
        return problems

    def _check_policy_size(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        namer = self.namer(spec, settings)
        known = {b.name for b in spec.storage.buckets}
        reads = {name: prefixes for name, prefixes in data_reads(spec).items() if name in known}
        partition = policies.partition_of(settings.region)
        grants = policies.storage_grants(
            partition=partition,
            artifacts=bucket_name(namer, ARTIFACTS),
            reads=reads,
            physical={name: bucket_name(namer, name) for name in reads},
        )
        # The key grant's ARN is only known after deployment: measure it at its longest.
        key_arn = f"arn:{partition}:kms:{settings.region}:123456789012:key/{'0' * 36}"
        key_grant = policies.policy_size(policies.key_use_policy(key_arn))
        account = "123456789012"
        trained = [m for m in spec.models if m.training is not None]
        if trained:
            extra = policies.policy_size(jobs.training_grants(
                partition=partition, region=settings.region, account_id=account,
                role_name=role_name(namer, "training", settings.region),
                models=[
                    jobs.ModelGrant(
                        job_prefix=job_prefix(namer, m.name),
                        repositories=(jobs.repository_arn(partition, settings.region, account,
                                                          repository_name(namer, m.name)),),
                        group=model_package_group_name(namer, m.name) if m.registry else None,
                    )
                    for m in trained
                ],
            )) + policies.policy_size(jobs.volume_key_grant(key_arn))
        else:
            extra = 0
        problems = []
        for role, doc in grants.items():
            size = policies.policy_size(doc) + key_grant + (extra if role == "training" else 0)
            if size > policies.INLINE_POLICY_LIMIT:
                problems.append(
                    finding(
                        ("storage", "buckets"),
                        f"the {role} identity's IAM policies would be {size} characters; IAM allows "
                        f"{policies.INLINE_POLICY_LIMIT} per role",
                        hint="read fewer buckets or prefixes in models[].training.inputs / monitoring / retraining"
                        + ("; or train fewer models per stack (each adds job, image, log and registry grants)"
                           if role == "training" and extra else ""),
                    )
                )
        return problems

    def _check_training(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        """Images SageMaker cannot pull, and request fields it would reject."""
        namer = self.namer(spec, settings)
        partition = policies.partition_of(settings.region)
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            training = model.training
            if training is None:
                continue
            path = ("models", i, "training")
            source = jobs.image_source(training.image, settings.region)
            if source.kind == "stack":
                target = jobs.push_target(partition=partition, region=settings.region,
                                          repository=repository_name(namer, model.name), reference=source.reference)
                problems.append(finding(
                    (*path, "image"),
                    f"SageMaker training pulls images only from Amazon ECR: this stack's pipeline trains "
                    f"{model.name!r} with {target} (the stack's repository, same tag)",
                    hint=f"after `up`, copy the image there (docker pull, docker tag, docker push; "
                    f"{jobs.ACCOUNT_PLACEHOLDER} is the stack's account), or name a private ECR image in "
                    f"{settings.region}",
                    value=training.image,
                    severity="warning",
                ))
            elif source.kind == "other-region":
                problems.append(finding(
                    (*path, "image"),
                    f"SageMaker training pulls images only from ECR in the job's region ({settings.region}); "
                    f"this image is in {source.ecr.region}",
                    hint=f"replicate the repository to {settings.region} (ECR replication) and name that copy, "
                    "or name an image outside ECR to use this stack's repository",
                    value=training.image,
                ))
            for key, value in training.hyperparameters.items():
                text = value if isinstance(value, str) else json.dumps(value)
                if len(key) > HYPERPARAMETER_KEY_MAX or len(text) > HYPERPARAMETER_VALUE_MAX:
                    problems.append(finding(
                        (*path, "hyperparameters", key),
                        f"SageMaker takes hyperparameter names of at most {HYPERPARAMETER_KEY_MAX} and values of "
                        f"at most {HYPERPARAMETER_VALUE_MAX} characters",
                        hint="pass large settings as an input file instead", value=key,
                    ))
            for key, value in training.environment.items():
                if not ENVIRONMENT_KEY.fullmatch(key) or len(key) > ENVIRONMENT_MAX or len(value) > ENVIRONMENT_MAX:
                    problems.append(finding(
                        (*path, "environment", key),
                        f"SageMaker takes environment variable names matching {ENVIRONMENT_KEY.pattern} and names "
                        f"and values of at most {ENVIRONMENT_MAX} characters",
                        hint="rename the variable (letters, digits, underscores; not starting with a digit)",
                        value=key,
                    ))
        return problems

    # --- engine -------------------------------------------------------------
    def create_provider(self, spec: Any, settings: AwsSettings) -> Any:
        import pulumi
        import pulumi_aws as aws

        # Default tags catch anything a stage module might miss; every taggable resource
        # also gets ctx.tags() explicitly, since plans only show explicit tags.
        tags = stack_tags(project=spec.project, environment=spec.environment, user=dict(spec.tags), stage="")
        tags.pop("mlops-stage", None)
        return aws.Provider(
            "aws",
            region=settings.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(),
        )

    def mock_call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": UNKNOWN, "arn": UNKNOWN, "userId": UNKNOWN, "id": UNKNOWN}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        if token == "aws:index/getRegion:getRegion":
            region = args.get("region") or args.get("name") or UNKNOWN
            return {"region": region, "name": region, "id": region, "endpoint": UNKNOWN, "description": UNKNOWN}
        return {}


def _shortfall(instance_type: str, compute: Any) -> str:
    """What a known instance type lacks against a compute requirement ("" when it fits or is unknown)."""
    spec = catalog.spec_of(instance_type)
    if spec is None:
        return ""
    need = compute.requirements
    missing = []
    if spec.cpus < need["cpus"]:
        missing.append(f"{spec.cpus} < {need['cpus']} vCPUs")
    if spec.memory_gib < need["memory_gib"]:
        missing.append(f"{spec.memory_gib} < {need['memory_gib']} GiB")
    if spec.gpus < need["gpus"]:
        missing.append(f"{spec.gpus} < {need['gpus']} GPUs")
    return ", ".join(missing)
