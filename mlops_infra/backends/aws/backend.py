"""AWS: the cloud's facts, its provider, its mocks and its discovery (no SDK import at module level).

What each stage refuses, and why, is in the stage's own module beside its build (`check`); what
AWS cannot do at all is GAPS, which validate reports through `gap` and the README lists.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mlops_infra.backends.aws import catalog
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws.naming import STYLES, AwsNamer
from mlops_infra.backends.aws.settings import AwsSettings
from mlops_infra.backends.base import Backend, Gap, Singleton
from mlops_infra.errors import UsageError
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.tagging import stack_tags

# S3 Glacier Flexible Retrieval bills every object for at least 90 days (S3 pricing,
# "minimum storage duration"); expiring sooner after archiving is charged as if kept 90 days.
GLACIER_MINIMUM_DAYS = 90
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

# What AWS cannot do as the spec says (Backend.gaps): validate reports these where the spec asks
# for them (stage modules call BACKEND.gap), and the README's per-cloud table lists them.
GAPS = {
    "models[].training.image": Gap(
        "SageMaker training pulls images only from Amazon ECR in the job's own region; this ECR image is in "
        "another region",
        hint="replicate the repository to the stack's region (ECR replication) and name that copy, or name an "
        "image outside ECR to use this stack's repository",
    ),
    "models[].serving.image": Gap(
        "SageMaker endpoints pull images only from Amazon ECR in the endpoint's own region; this ECR image is in "
        "another region",
        hint="replicate the repository to the stack's region (ECR replication) and name that copy, or name an "
        "image outside ECR to use this stack's repository",
    ),
    "models[].serving.model_uri": Gap(
        "SageMaker endpoints load model data from S3 only (no public or HTTP downloads): model_uri must be "
        "s3://<bucket>/<key>",
        hint="copy the model to the stack's artifact bucket (or another private bucket) and name it here",
    ),
    "models[].serving.data_capture.sampling_percent": Gap(
        "SageMaker samples a whole percentage of requests (InitialSamplingPercentage is an integer)",
        hint="use a whole number from 1 to 100",
    ),
    "models[].serving.rollout": Gap(
        "a canary or linear rollout on SageMaker shifts traffic by shares of the running instances: at one "
        "instance the first step is the whole fleet",
        hint=f"set autoscaling.min_replicas to at least {endpoints.MIN_SPLIT_INSTANCES}, or use mode: all-at-once",
    ),
    "models[].serving.rollout.canary_percent": Gap(
        f"SageMaker takes a canary of a whole percentage, at most {endpoints.CANARY_MAX_PERCENT}% of the "
        "instances (CanarySize)",
        hint=f"use a whole number from 1 to {endpoints.CANARY_MAX_PERCENT}",
    ),
    "models[].serving.rollout.step_percent": Gap(
        f"SageMaker takes linear steps of a whole percentage, {endpoints.LINEAR_MIN_PERCENT}% to "
        f"{endpoints.LINEAR_MAX_PERCENT}% of the instances (LinearStepSize)",
        hint=f"use a whole number from {endpoints.LINEAR_MIN_PERCENT} to {endpoints.LINEAR_MAX_PERCENT}",
    ),
    "models[].monitoring.drift": Gap(
        "SageMaker Model Monitor's built-in analyzer image is published in some regions only, and none is known "
        "for the stack's region",
        hint=f"deploy the stack to one of {', '.join(sorted(alarms.ANALYZER_ACCOUNTS))}, or remove drift monitoring",
    ),
    "models[].monitoring.drift.schedule": Gap(
        "SageMaker Model Monitor runs data-quality checks hourly or daily only",
        hint="use schedule: daily (or hourly)",
    ),
    "tracking": Gap(
        "with governance.network: private, SageMaker's managed MLflow tracking server still runs in a VPC that "
        "SageMaker manages and takes no VPC configuration: clients reach it privately only through an interface "
        "endpoint for SageMaker MLflow in their own VPC, which the stack does not create (its service name is not "
        "in this version's reference data)",
        hint="create that endpoint in the stack's VPC (https://docs.aws.amazon.com/sagemaker/latest/dg/"
        "mlflow-interface-endpoint.html); the stack's SageMaker API endpoint already serves presigned URLs. The "
        "server's own artifact traffic is allowed into the artifact bucket (its role is exempt from the network "
        "rule)",
        severity="warning",
    ),
    "models[].monitoring.explainability": Gap(
        "Clarify explainability monitoring runs the prebuilt SageMaker Clarify image, and none is known for the "
        "stack's region",
        hint="deploy the stack to a region listed in backends/aws/facts/clarify.json, or remove this monitoring",
    ),
    "models[].monitoring.explainability.schedule": Gap(
        "SageMaker monitoring schedules run hourly or daily only",
        hint="use schedule: daily (or hourly)",
    ),
    "models[].monitoring.bias": Gap(
        "Clarify bias monitoring runs the prebuilt SageMaker Clarify image, and none is known for the stack's region",
        hint="deploy the stack to a region listed in backends/aws/facts/clarify.json, or remove this monitoring",
    ),
    "models[].monitoring.bias.schedule": Gap(
        "SageMaker monitoring schedules run hourly or daily only",
        hint="use schedule: daily (or hourly)",
    ),
    "models[].monitoring.model_quality": Gap(
        "model-quality monitoring runs Model Monitor's built-in analyzer image, and none is known for the stack's "
        "region",
        hint=f"deploy the stack to one of {', '.join(sorted(alarms.ANALYZER_ACCOUNTS))}, or remove this monitoring",
    ),
    "models[].monitoring.model_quality.schedule": Gap(
        "SageMaker monitoring schedules run hourly or daily only",
        hint="use schedule: daily (or hourly)",
    ),
    "models[].monitoring.bias.label": Gap(
        "SageMaker Clarify computes post-training bias from predictions joined with ground-truth labels, and "
        "this model names no ground truth",
        hint="add models[].monitoring.model_quality with ground_truth: {bucket, prefix} (where the labels land)",
    ),
    "models[].training.evaluation.image": Gap(
        "SageMaker Processing pulls images only from Amazon ECR in the job's own region; this ECR image is in "
        "another region",
        hint="replicate the repository to the stack's region (ECR replication) and name that copy, or name an "
        "image outside ECR to use this stack's repository",
    ),
    "workspaces.idle_shutdown": Gap(
        "SageMaker Studio shuts idle JupyterLab apps down after 60 to 525600 minutes (IdleTimeoutInMinutes)",
        hint="use idle_shutdown: 1h (the longest the spec takes, and the shortest Studio takes)",
    ),
    "models[].data_prep.image": Gap(
        "SageMaker Processing pulls images only from Amazon ECR in the job's own region; this ECR image is in "
        "another region",
        hint="replicate the repository to the stack's region (ECR replication) and name that copy, or name an "
        "image outside ECR to use this stack's repository",
    ),
    "models[].data_prep.schedule": Gap(
        "EventBridge Scheduler cannot fire on a day of the month OR a day of the week: a cron restricts one of "
        "them (the other is '?'), while this schedule restricts both",
        hint="restrict only one of the two day fields and use '*' in the other (e.g. '0 1 1 * *' or "
        "'0 1 * * sun')",
    ),
    "models[].retraining.schedule": Gap(
        "EventBridge Scheduler cannot fire on a day of the month OR a day of the week: a cron restricts one of "
        "them (the other is '?'), while this schedule restricts both",
        hint="restrict only one of the two day fields and use '*' in the other (e.g. '30 4 1 * *' or "
        "'30 4 * * mon')",
    ),
    "models[].batch": Gap(
        "the batch pipeline scores with the model's training output (s3://<artifacts>/models/<model>/, as the "
        "endpoint serves it), not the registry's latest approved version: a SageMaker pipeline has no step that "
        "looks that version up (it would need a Lambda step, which the stack does not build)",
        hint="set batch.model_uri to the approved version's model.tar.gz to score with exactly that version",
        severity="warning",
    ),
    "models[].batch.model_uri": Gap(
        "SageMaker Batch Transform loads model data from S3 only: model_uri must be s3://<bucket>/<key>",
        hint="copy the model to the stack's artifact bucket (under models/) and name it here",
    ),
    "models[].batch.max_runtime": Gap(
        "SageMaker Batch Transform jobs take no time limit (CreateTransformJob has no stopping condition): a run "
        "ends when its input is scored, or fails",
        hint="remove max_runtime; a run that hangs can be stopped with `aws sagemaker stop-pipeline-execution`",
        severity="warning",
    ),
    "models[].batch.schedule": Gap(
        "EventBridge Scheduler cannot fire on a day of the month OR a day of the week: a cron restricts one of "
        "them (the other is '?'), while this schedule restricts both",
        hint="restrict only one of the two day fields and use '*' in the other (e.g. '0 5 1 * *' or "
        "'0 5 * * mon')",
    ),
    "models[].serving.auth": Gap(
        "SageMaker endpoints accept only requests signed with AWS Signature Version 4 by IAM principals allowed "
        "sagemaker:InvokeEndpoint: they have no API keys",
        hint="use auth: iam (clients sign with IAM credentials, e.g. through the AWS SDKs); for key-based clients, "
        "put a gateway you run in front of the endpoint",
    ),
    "models[].serving.serverless.memory_gib": Gap(
        "SageMaker serverless endpoints take 1 to 6 GiB of memory (MemorySizeInMB 1024-6144)",
        hint="use memory_gib: 6 or less, or mode: realtime with a larger compute",
    ),
    "models[].serving.serverless.max_concurrency": Gap(
        "SageMaker serverless endpoints take at most 200 concurrent invocations each (MaxConcurrency)",
        hint="use max_concurrency: 200 or less, or mode: realtime with autoscaling",
    ),
}


class AwsBackend(Backend):
    name = "aws"
    display_name = "AWS"
    sdk_package = "pulumi_aws"
    settings_model = AwsSettings
    naming_styles = STYLES
    settings_example = "clouds: {aws: {region: us-east-1, account_id: \"123456789012\"}}"
    # Grants, and in a private network the paths to AWS APIs: a job or an endpoint that starts
    # before its VPC endpoints, routes and security group rules exist cannot pull its image or data.
    prerequisite_types = frozenset({
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    })
    unsupported: ClassVar[dict[str, str]] = {}  # every stage deploys on AWS
    gaps = GAPS
    serving_modes = frozenset({"realtime", "serverless", "async"})

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
        "aws:sagemaker/featureGroup:FeatureGroup",  # its offline store's data stays in S3 either way
        "aws:sagemaker/domain:Domain",  # the users' home directories
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

    def check(self, spec: Any, settings: AwsSettings | None) -> list[Problem]:
        """Every check runs even without clouds.aws.account_id (with a stand-in): one run reports all."""
        if settings is None:
            return []
        problems: list[Problem] = []
        if settings.account_id is None:
            problems.append(finding(
                ("clouds", "aws", "account_id"),
                "AWS needs the account the stack deploys to: S3 bucket names are unique across every AWS "
                "customer, and the stack's include its account id so that no other organization can hold them",
                hint=ACCOUNT_HINT,
            ))
            settings = settings.model_copy(update={"account_id": ACCOUNT_PLACEHOLDER})
        return problems + super().check(spec, settings)

    def override_field(self, purpose: str) -> str:
        return catalog.OVERRIDE_FIELDS[purpose]

    def resolve_compute(self, compute: Any, purpose: str, settings: AwsSettings) -> Any:
        return catalog.instance_type(compute, purpose, settings)

    def check_cloud(self, spec: Any, settings: AwsSettings) -> list[Problem]:
        return catalog.check_overrides(spec, settings)

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
        if token == "aws:iam/getSessionContext:getSessionContext":
            arn = args.get("arn", UNKNOWN)
            return {"arn": arn, "issuerArn": UNKNOWN, "issuerId": UNKNOWN, "issuerName": UNKNOWN,
                    "sessionName": UNKNOWN, "id": arn}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Which zones a region offers is the cloud's answer; a private network takes the first two.
            return {"names": [UNKNOWN, UNKNOWN], "zoneIds": [UNKNOWN, UNKNOWN], "id": UNKNOWN}
        if token == "aws:ec2/getVpc:getVpc":
            # The account's default VPC (public workspaces) is the cloud's answer.
            return {"id": UNKNOWN, "arn": UNKNOWN, "cidrBlock": UNKNOWN, "default": True}
        if token == "aws:ec2/getSubnets:getSubnets":
            return {"id": UNKNOWN, "ids": [UNKNOWN, UNKNOWN]}
        if token == "aws:index/getRegion:getRegion":
            region = args.get("region") or args.get("name") or UNKNOWN
            return {"region": region, "name": region, "id": region, "endpoint": UNKNOWN, "description": UNKNOWN}
        return {}
