"""AWS: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_infra.backends import checks
from mlops_infra.backends.aws import catalog, policies
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    ACCOUNT_REGIONAL,
    STYLES,
    AwsNamer,
    bucket_name,
    bucket_namespace,
    repository_name,
)
from mlops_infra.backends.aws.settings import AwsSettings
from mlops_infra.backends.base import Backend, CatalogMiss, Singleton
from mlops_infra.errors import UsageError
from mlops_infra.facts import fact
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS, CAPTURE_PREFIX
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
# Stands in for a missing clouds.aws.account_id while the other checks run (so every problem is
# reported at once); the missing id itself is an error.
ACCOUNT_PLACEHOLDER = "000000000000"
ACCOUNT_HINT = ("add account_id: \"123456789012\" (your 12-digit account, quoted) under clouds.aws; "
                "`aws sts get-caller-identity --query Account --output text` prints it")
# Resource types that configure an account or a region once (account settings, registry-wide
# settings, service-linked roles...). The stack creates none of them, so it owns no singleton
# (see singletons); tests/test_tenancy_aws.py fails if a plan ever contains one.
ACCOUNT_SETTING_TYPES = frozenset({
    "aws:account/alternativeContact:AlternativeContact",
    "aws:account/primaryContact:PrimaryContact",
    "aws:accessanalyzer/analyzer:Analyzer",
    "aws:apigateway/account:Account",
    "aws:cloudtrail/organizationDelegatedAdminAccount:OrganizationDelegatedAdminAccount",
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
    "aws:cloudwatch/logAccountPolicy:LogAccountPolicy",
    "aws:ebs/defaultKmsKey:DefaultKmsKey",
    "aws:ebs/encryptionByDefault:EncryptionByDefault",
    "aws:ecr/accountSetting:AccountSetting",
    "aws:ecr/registryPolicy:RegistryPolicy",
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration",
    "aws:ecr/replicationConfiguration:ReplicationConfiguration",
    "aws:guardduty/detector:Detector",
    "aws:iam/accountAlias:AccountAlias",
    "aws:iam/accountPasswordPolicy:AccountPasswordPolicy",
    "aws:iam/securityTokenServicePreferences:SecurityTokenServicePreferences",
    "aws:iam/serviceLinkedRole:ServiceLinkedRole",
    "aws:inspector2/enabler:Enabler",
    "aws:lakeformation/dataLakeSettings:DataLakeSettings",
    "aws:macie2/account:Account",
    "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
    "aws:sagemaker/servicecatalogPortfolioStatus:ServicecatalogPortfolioStatus",
    "aws:securityhub/account:Account",
    "aws:ssm/serviceSetting:ServiceSetting",
})


class AwsBackend(Backend):
    name = "aws"
    display_name = "AWS"
    sdk_package = "pulumi_aws"
    settings_model = AwsSettings
    naming_styles = STYLES
    settings_example = "clouds: {aws: {region: us-east-1, account_id: \"123456789012\"}}"
    prerequisite_types = frozenset({"aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"})
    # Every stage is implemented (Backend.unsupported stays empty).

    # --- teardown: the data, the keys, and what guards kept data --------------------------
    kept_types = frozenset({
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",  # TLS only, and CloudTrail's delivery into audit-logs/
        "aws:cloudtrail/trail:Trail",  # who reads the kept data stays recorded
        "aws:ecr/repository:Repository",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
    })
    force_delete_inputs = {"aws:s3/bucket:Bucket": "forceDestroy", "aws:ecr/repository:Repository": "forceDelete"}
    # Inputs holding names AWS keeps unique per account, region or partition.
    physical_name_inputs = frozenset({
        "name", "bucket", "pipelineName", "pipelineDisplayName", "modelPackageGroupName", "trackingServerName",
        "dashboardName",
    })

    def name_scope(self, settings: AwsSettings) -> str:
        return settings.region

    def namer(self, spec: Any, settings: AwsSettings) -> AwsNamer:
        return AwsNamer(
            account_id=settings.account_id,
            region=settings.region,
            cloud=self.name,
            project=spec.project,
            environment=spec.environment,
            styles=self.naming_styles,
            scope=self.name_scope(settings),
        )

    def singletons(self, spec: Any, settings: AwsSettings) -> list[Singleton]:
        """None: every AWS object of the stack is named by its project and environment (and bucket
        names by the account), so stacks sharing an account never claim the same one, and the stack
        creates no account or region setting (ACCOUNT_SETTING_TYPES). What several stacks use
        without owning it is created by AWS and outlives every stack: the Application Auto Scaling
        service-linked role for SageMaker endpoints (made on the first scaling target), SageMaker's
        log groups (/aws/sagemaker/TrainingJobs, ProcessingJobs, Endpoints/<endpoint>), the default
        EventBridge bus and EventBridge Scheduler's "default" schedule group."""
        return []

    # --- validation ---------------------------------------------------------
    endpoint_service = "SageMaker real-time endpoints"
    scale_to_zero_hint = "set min_replicas: 1 (scale-to-zero needs inference components, not supported yet)"
    archive_tier = "S3 Glacier"
    archive_minimum_days = GLACIER_MINIMUM_DAYS
    storage_service = "AWS"

    def override_field(self, purpose: str) -> str:
        return OVERRIDE_FIELDS[purpose]

    def resolve_compute(self, compute: Any, purpose: str, settings: AwsSettings) -> Any:
        return catalog.instance_type(compute, purpose, settings)

    def check_cloud(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        problems: list[Problem] = []
        if settings.account_id is None:
            problems.append(finding(
                ("clouds", "aws", "account_id"),
                "AWS needs the account the stack deploys to: S3 bucket names are unique across every AWS "
                "customer, and the stack's include its account id so that no other organization can hold them",
                hint=ACCOUNT_HINT,
            ))
            settings = settings.model_copy(update={"account_id": ACCOUNT_PLACEHOLDER})
        problems += self._check_overrides(spec, settings)
        problems += grants.problems(spec, self.namer(spec, settings), settings)
        problems += self._check_namespace(settings)
        problems += self._check_registry(spec)
        problems += self._check_training(spec, settings)
        problems += self._check_serving(spec, settings)
        problems += self._check_monitoring(spec, settings)
        problems += self._check_retraining(spec)
        problems += checks.private_network_has_no_effect(
            spec,
            message="network: private has no effect on AWS yet: no VPC, subnets or VPC endpoints are created, "
            "and SageMaker endpoints get no VPC config",
            hint="resources stay reachable through public AWS endpoints (IAM still applies, and endpoints only "
            "answer SigV4-signed requests); VPC support is not implemented yet (training and serving "
            "containers already run network-isolated)",
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

    def _check_namespace(self, settings: AwsSettings) -> list[Problem]:
        """Where S3 has no account regional namespace, a deleted bucket's name is anyone's."""
        if bucket_namespace(settings.region) == ACCOUNT_REGIONAL:
            return []
        reuse = fact("aws", "s3", "global_namespace_reuse")
        return [finding(
            ("clouds", "aws", "region"),
            f"S3 offers no account regional namespace in {settings.region} "
            f"({fact('aws', 's3', 'account_regional_namespace').source}): the stack's buckets are created in the "
            f"global namespace, where a deleted bucket's name can be created by any account "
            f"({reuse.source}, as of {reuse.as_of})",
            hint="bucket names end with your account id, so only a deliberate squatter would take one; after "
            "`destroy --delete-data`, redeploy soon, or keep the data (a default destroy keeps the buckets)",
            value=settings.region,
            severity="warning",
        )]

    def _check_registry(self, spec: Any) -> list[Problem]:
        """A registered version names the image that serves it: the serving image, when there is one."""
        return [
            finding(
                ("models", i, "registry"),
                f"model {model.name!r} has a registry but no serving section: its pipeline registers versions with "
                "the training image as their inference container",
                hint="add models[].serving (its image is registered), or check that the training image also serves",
                severity="warning",
            )
            for i, model in enumerate(spec.models)
            if model.registry is not None and model.training is not None and model.serving is None
        ]

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
                                          repository=repository_name(namer, model.name), reference=source.reference,
                                          account=settings.account_id or ACCOUNT_PLACEHOLDER)
                problems.append(finding(
                    (*path, "image"),
                    f"SageMaker training pulls images only from Amazon ECR: this stack's pipeline trains "
                    f"{model.name!r} with {target} (the stack's repository, same tag)",
                    hint=f"after `up`, copy the image there (docker pull, docker tag, docker push), or name a "
                    f"private ECR image in {settings.region}",
                    value=training.image,
                    severity="warning",
                ))
            elif source.kind == "other-region":
                assert source.ecr is not None  # "other-region" sources are always ECR images
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
            problems += _check_environment(training.environment, path)
        return problems

    def _check_serving(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        """What SageMaker endpoints would reject, or do differently than the spec says."""
        namer = self.namer(spec, settings)
        region = settings.region
        partition = policies.partition_of(region)
        artifacts = bucket_name(namer, ARTIFACTS)
        stack_buckets = {artifacts} | {bucket_name(namer, b.name) for b in spec.storage.buckets}
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            serving = model.serving
            if serving is None:
                continue
            path = ("models", i, "serving")
            problems += self._serving_image(model, path, namer, region, partition)
            problems += _check_environment(serving.environment, path)
            if serving.model_uri:
                problems += _check_model_uri(serving.model_uri, (*path, "model_uri"), artifacts, stack_buckets)
            capture = serving.data_capture
            if capture is not None and not endpoints.whole(capture.sampling_percent):
                problems.append(finding(
                    (*path, "data_capture", "sampling_percent"),
                    "SageMaker samples a whole percentage of requests (InitialSamplingPercentage is an integer)",
                    hint=f"use {max(1, round(capture.sampling_percent))}", value=capture.sampling_percent,
                ))
            problems += _check_rollout(serving, path)
            problems += self._check_scaling(model, path, settings)
        return problems

    def _check_monitoring(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        """What SageMaker Model Monitor and CloudWatch dashboards cannot do as the spec says."""
        namer = self.namer(spec, settings)
        region = settings.region
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            drift = model.monitoring.drift if model.monitoring else None
            if drift is None:
                continue
            path = ("models", i, "monitoring", "drift")
            if alarms.monitor_cron(drift.schedule) is None:
                problems.append(finding(
                    (*path, "schedule"),
                    f"SageMaker Model Monitor runs data-quality checks hourly or daily only, not {drift.schedule}",
                    hint="use schedule: daily (or hourly)", value=drift.schedule,
                ))
            if alarms.analyzer_image(policies.partition_of(region), region) is None:
                problems.append(finding(
                    path,
                    f"no SageMaker Model Monitor analyzer image is known for {region}",
                    hint=f"deploy the stack to one of {', '.join(sorted(alarms.ANALYZER_ACCOUNTS))}, "
                    "or remove drift monitoring",
                ))
            ref = drift.baseline_ref
            uris = alarms.baseline_uris(bucket_name(namer, ref.bucket), ref.prefix)
            problems.append(finding(
                (*path, "baseline"),
                f"SageMaker Model Monitor compares {model.name!r}'s captured requests with a baseline's statistics "
                f"and constraints: the stack reads {uris['statistics']} and {uris['constraints']}",
                hint="write them with a baselining job over the baseline data (SageMaker Python SDK: "
                "DefaultModelMonitor.suggest_baseline, output to that prefix); requests must be tabular (CSV or "
                "flat JSON). Model Monitor is closed to new AWS customers: accounts that never used it cannot "
                "create schedules",
                severity="warning",
            ))
        served = [m for m in spec.models if m.serving is not None]
        if spec.monitoring.dashboard and len(served) > alarms.MODELS_PER_DASHBOARD:
            pages = len(alarms.pages([m.name for m in served]))
            problems.append(finding(
                ("monitoring", "dashboard"),
                f"a CloudWatch dashboard holds at most {alarms.MAX_WIDGETS} widgets ({alarms.MODELS_PER_DASHBOARD} "
                f"served models): the {len(served)} served models are shown on {pages} dashboards",
                hint="set monitoring.dashboard: false to create none", severity="warning",
            ))
        return problems

    def _check_retraining(self, spec: Any) -> list[Problem]:
        """Schedules EventBridge Scheduler cannot express."""
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            retrain = model.retraining
            if retrain is None or not retrain.schedule:
                continue
            try:
                triggers.scheduler_cron(retrain.schedule)
            except triggers.UntranslatableCron as exc:
                problems.append(finding(
                    ("models", i, "retraining", "schedule"), str(exc),
                    hint="restrict only one of the two day fields and use '*' in the other (e.g. '30 4 1 * *' or "
                    "'30 4 * * mon')",
                    value=retrain.schedule,
                ))
        return problems

    def _serving_image(self, model: Any, path: tuple, namer: AwsNamer, region: str, partition: str) -> list[Problem]:
        image = model.serving.image
        source = jobs.image_source(image, region)
        if source.kind == "stack":
            target = jobs.push_target(partition=partition, region=region,
                                      repository=repository_name(namer, model.name, "serving"),
                                      reference=source.reference, account=namer.account_id or ACCOUNT_PLACEHOLDER)
            return [finding(
                (*path, "image"),
                f"SageMaker endpoints (without a VPC) pull images only from Amazon ECR: this stack serves "
                f"{model.name!r} with {target} (the stack's repository, same tag)",
                hint=f"after `up` creates the repository, copy the image there (docker pull, docker tag, docker push) "
                f"and deploy again, or name a private ECR image in {region}",
                value=image,
                severity="warning",
            )]
        if source.kind == "other-region":
            assert source.ecr is not None  # "other-region" sources are always ECR images
            return [finding(
                (*path, "image"),
                f"SageMaker endpoints pull images only from ECR in the endpoint's region ({region}); this image is "
                f"in {source.ecr.region}",
                hint=f"replicate the repository to {region} (ECR replication) and name that copy, or name an image "
                "outside ECR to use this stack's repository",
                value=image,
            )]
        return []

    def _check_scaling(self, model: Any, path: tuple, settings: AwsSettings) -> list[Problem]:
        autoscaling = model.serving.autoscaling
        problems: list[Problem] = []
        if autoscaling.target_cpu_percent is not None:
            try:
                instance_type = catalog.model_instance_type(model, "serving", settings)
            except CatalogMiss:
                instance_type = None  # reported by checks.compute_misses
            if instance_type is not None and endpoints.cpu_target(autoscaling.target_cpu_percent, instance_type) is None:
                problems.append(finding(
                    (*path, "autoscaling", "target_cpu_percent"),
                    f"SageMaker's CPUUtilization adds up every vCPU, and the catalog does not know how many "
                    f"{instance_type} has: the target applies as if it had one",
                    hint="scale on target_requests_per_replica, or use an instance type from the catalog",
                    value=autoscaling.target_cpu_percent, severity="warning",
                ))
        if autoscaling.max_replicas > max(autoscaling.min_replicas, 1) and endpoints.policy_suffix(autoscaling) is None:
            problems.append(finding(
                (*path, "autoscaling"),
                f"no scaling target: the endpoint stays at {max(autoscaling.min_replicas, 1)} instance(s) and never "
                f"uses max_replicas ({autoscaling.max_replicas})",
                hint="set target_requests_per_replica or target_cpu_percent",
                severity="warning",
            ))
        return problems

    # --- engine -------------------------------------------------------------
    def create_provider(self, spec: Any, settings: AwsSettings) -> Any:
        import pulumi
        import pulumi_aws as aws

        # Default tags catch anything a stage module might miss; every taggable resource
        # also gets ctx.tags() explicitly, since plans only show explicit tags.
        if settings.account_id is None:  # validate requires it; this is a program run without validation
            raise UsageError("clouds.aws.account_id is missing", hint=ACCOUNT_HINT)
        tags = stack_tags(project=spec.project, environment=spec.environment, user=dict(spec.tags), stage="")
        tags.pop("mlops-stage", None)
        return aws.Provider(
            "aws",
            region=settings.region,
            # Names and grants carry this account: credentials of any other account are refused
            # before anything is created.
            allowed_account_ids=[settings.account_id],
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


def _check_environment(environment: Any, path: tuple) -> list[Problem]:
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


def _check_model_uri(uri: str, path: tuple, artifacts: str, stack_buckets: set[str]) -> list[Problem]:
    """SageMaker reads model data from S3 only; the stack's grants decide what the serving role reads."""
    location = endpoints.parse_s3(uri)
    if location is None:
        return [finding(
            path, "SageMaker endpoints load model data from S3 only (no public or HTTP downloads): model_uri must "
            "be s3://<bucket>/<key>",
            hint="copy the model to the stack's artifact bucket (or another private bucket) and name it here",
            value=uri,
        )]
    if location.bucket == artifacts and location.key.startswith((f"{policies.AUDIT_PREFIX}/", CAPTURE_PREFIX)):
        return [finding(
            path, "model_uri points into the artifact bucket's audit logs or captured data, which the serving "
            "identity may not read",
            hint=f"use a location under {policies.MODELS_PREFIX} (where training writes models)", value=uri,
        )]
    if location.bucket not in stack_buckets:
        return [finding(
            path, f"model_uri is outside this stack's buckets: the serving identity gets read access to it, but the "
            f"stack cannot check that {location.bucket} is private or which key encrypts it",
            hint="keep model artifacts in the stack's buckets; otherwise make sure the bucket blocks public access and, "
            "if it uses its own KMS key, that the key lets the serving role decrypt",
            value=uri, severity="warning",
        )]
    return []


def _check_rollout(serving: Any, path: tuple) -> list[Problem]:
    rollout = serving.rollout
    problems: list[Problem] = []
    if rollout.mode == "all-at-once":
        return problems
    if serving.autoscaling.min_replicas < endpoints.MIN_SPLIT_INSTANCES:
        problems.append(finding(
            (*path, "autoscaling", "min_replicas"),
            f"a {rollout.mode} rollout on SageMaker shifts traffic by shares of the running instances, and at "
            f"{max(serving.autoscaling.min_replicas, 1)} instance the first step is the whole fleet",
            hint=f"set min_replicas to at least {endpoints.MIN_SPLIT_INSTANCES}, or use mode: all-at-once",
            value=serving.autoscaling.min_replicas,
        ))
    if rollout.mode == "canary":
        value = rollout.canary_percent
        if not endpoints.whole(value) or value > endpoints.CANARY_MAX_PERCENT:
            problems.append(finding(
                (*path, "rollout", "canary_percent"),
                f"SageMaker takes a canary of a whole percentage, at most {endpoints.CANARY_MAX_PERCENT}% of the "
                "instances (CanarySize)",
                hint=f"use a whole number from 1 to {endpoints.CANARY_MAX_PERCENT}", value=value,
            ))
    if rollout.mode == "linear":
        value = rollout.step_percent
        low, high = endpoints.LINEAR_MIN_PERCENT, endpoints.LINEAR_MAX_PERCENT
        if not endpoints.whole(value) or not low <= value <= high:
            problems.append(finding(
                (*path, "rollout", "step_percent"),
                f"SageMaker takes linear steps of a whole percentage, {low}% to {high}% of the instances "
                "(LinearStepSize)",
                hint=f"use a whole number from {low} to {high}", value=value,
            ))
    return problems
