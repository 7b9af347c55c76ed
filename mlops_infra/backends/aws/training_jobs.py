"""SageMaker training as pure data: images, channels, the training request, names, IAM grants.

No SDK here: the training stage renders these into the pipeline template
(templates/aws/pipeline.json.j2) and the one-off TrainingJob, training.check validates
images and measures the grants, and the tests read them.

Images. SageMaker training pulls only from a private ECR repository in the job's region
(CreateTrainingJob AlgorithmSpecification.TrainingImage). For each model the stack keeps one
repository (immutable tags, scan on push, the stack key). The spec's image is never
rewritten silently:
- a private ECR image in the stack's region is used as written; the training role may pull
  from its repository (when it belongs to another account, that repository's policy must
  also let this stack's training role pull: AWS Deep Learning Containers already do);
- any other image (ghcr.io, Docker Hub, public.ecr.aws) is pulled from the stack's
  repository with the same tag or digest; training.check warns with the push target;
- a private ECR image in another region is an error: SageMaker cannot pull across regions.

Names. Every training job of a model starts with its job prefix (naming.job_prefix): the
pipeline's training step carries the prefix as TrainingJobName, which SageMaker Pipelines
uses as a prefix for the jobs it starts (the Python SDK's `use_custom_job_prefix`), and a
one-off job (`run_on_deploy`) is named prefix + a hash of its full definition. IAM grants
name jobs and their log streams by the stack's prefix (naming.stack_prefix), which every job
prefix starts with: the training grant stays the same size whatever the number of models.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws.naming import stack_prefix
from mlops_infra.naming import Namer, stable_hash
from mlops_infra.spec.models import DataRef

VOLUME_SIZE_GB = 30  # EBS volume per instance (the SageMaker Python SDK's default volume_size)
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"  # CheckpointConfig.LocalPath default
MAX_SECONDS = 28 * 86400  # StoppingCondition.MaxRuntimeInSeconds: "The maximum value is 28 days"
SPOT_WAIT_FACTOR = 2  # max_wait defaults to twice max_runtime (capped at MAX_SECONDS)
INPUT_MODE = "File"  # AlgorithmSpecification.TrainingInputMode: channels are copied before the job starts
TRAIN_STEP = "Train"
REGISTER_STEP = "RegisterModel"
JOB_HASH_LENGTH = 12
LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # where SageMaker writes training job logs
SAGEMAKER = policies.SAGEMAKER
APPROVAL_STATUS = {"manual": "PendingManualApproval", "automatic": "Approved"}  # CreateModelPackage.ModelApprovalStatus
TRACKING_SIZES = {"small": "Small", "medium": "Medium", "large": "Large"}  # CreateMlflowTrackingServer.TrackingServerSize
MLFLOW_PREFIX = "mlflow/"  # the tracking server's artifact store in the artifact bucket

# ECR actions SageMaker needs to pull an image with the job's role. GetAuthorizationToken
# has no resource-level permission (Service Authorization Reference, Amazon ECR): "*" only.
ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
ECR_LOGIN = ("ecr:GetAuthorizationToken",)
LOGS_STREAM = ("logs:CreateLogStream", "logs:PutLogEvents")
LOGS_GROUP = ("logs:CreateLogGroup", "logs:DescribeLogStreams")
# What the pipeline (running as the training role) does to the jobs it starts. AddTags:
# the training step passes the stack tags, and tagging on create needs it.
JOB_CONTROL = ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
               "sagemaker:AddTags")
# EBS volume encryption with a customer managed key: the caller of CreateTrainingJob lets
# EBS create a grant on the key; kms:GrantIsForAWSResource limits it to AWS services.
KMS_VOLUME_GRANT = ("kms:CreateGrant",)
# The MLflow tracking server reads and writes its artifacts under mlflow/ (SSE-KMS: the key).
TRACKING_KMS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")

_ECR = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|c2s\.ic\.gov"
    r"|sc2s\.sgov\.gov)/(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?P<reference>:[A-Za-z0-9_][A-Za-z0-9_.-]*|@[a-z0-9]+:[0-9a-fA-F]+)$"
)
_DNS_SUFFIX = {"aws-cn": "amazonaws.com.cn", "aws-iso": "c2s.ic.gov", "aws-iso-b": "sc2s.sgov.gov"}
ACCOUNT_PLACEHOLDER = "<account-id>"


# --- images -----------------------------------------------------------------
@dataclass(frozen=True)
class EcrImage:
    account: str
    region: str
    repository: str
    reference: str  # ":tag" or "@sha256:..."


@dataclass(frozen=True)
class ImageSource:
    """Where SageMaker pulls a model's training image from."""

    kind: str  # "ecr": the spec's ECR image as written; "stack": the stack's repository; "other-region"
    reference: str  # ":tag" or "@sha256:..." of the spec's image
    ecr: EcrImage | None = None  # the spec's image when it is a private ECR image


def parse_ecr(image: str) -> EcrImage | None:
    """The parts of a private ECR image reference (None for any other registry)."""
    match = _ECR.match(image)
    if not match:
        return None
    return EcrImage(match["account"], match["region"], match["repository"], match["reference"])


def image_reference(image: str) -> str:
    """The ":tag" or "@digest" part of an image reference (the spec requires one)."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    return ":" + image.rsplit("/", 1)[-1].rsplit(":", 1)[1]


def image_source(image: str, region: str) -> ImageSource:
    ecr = parse_ecr(image)
    if ecr is None:
        return ImageSource("stack", image_reference(image))
    return ImageSource("ecr" if ecr.region == region else "other-region", ecr.reference, ecr)


def dns_suffix(partition: str) -> str:
    """The DNS suffix of AWS service endpoints in a partition."""
    return _DNS_SUFFIX.get(partition, "amazonaws.com")


def registry_host(partition: str, region: str, account: str = ACCOUNT_PLACEHOLDER) -> str:
    return f"{account}.dkr.ecr.{region}.{dns_suffix(partition)}"


def push_target(
    *, partition: str, region: str, repository: str, reference: str, account: str = ACCOUNT_PLACEHOLDER
) -> str:
    """Where to push an image so that the stack's repository serves it (the repository's URI + the tag)."""
    return f"{registry_host(partition, region, account)}/{repository}{reference}"


def pulled_image(*, image: str, partition: str, region: str, account: str, repository: str) -> str:
    """The image SageMaker pulls for a spec image: a private ECR image of the stack's region as
    written, any other from the stack's repository `repository` with the same tag or digest.
    Training, the registry and serving all name images through this, so they agree."""
    source = image_source(image, region)
    if source.kind != "stack":
        return image
    return push_target(partition=partition, region=region, repository=repository, reference=source.reference,
                       account=account)


def repository_arn(partition: str, region: str, account: str, repository: str) -> str:
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"


# --- the training request ---------------------------------------------------
@dataclass(frozen=True)
class Channel:
    name: str  # the container reads it under /opt/ml/input/data/<name>/
    bucket: str  # logical bucket name (storage.buckets[].name)
    prefix: str  # "" = the whole bucket


def channels(refs: Sequence[DataRef]) -> list[Channel]:
    """One input channel per distinct (bucket, prefix), named after the bucket (plus the prefix
    when a bucket is read more than once). ChannelName: [A-Za-z0-9.-_]+, at most 64."""
    distinct: list[DataRef] = []
    for ref in refs:
        if (ref.bucket, ref.prefix) not in [(d.bucket, d.prefix) for d in distinct]:
            distinct.append(ref)
    per_bucket: dict[str, int] = {}
    for ref in distinct:
        per_bucket[ref.bucket] = per_bucket.get(ref.bucket, 0) + 1
    out: list[Channel] = []
    taken: set[str] = set()
    for ref in distinct:
        name = ref.bucket
        if per_bucket[ref.bucket] > 1:
            name = f"{ref.bucket}-{re.sub(r'[^A-Za-z0-9._-]+', '-', ref.prefix).strip('-') or 'all'}"
        if len(name) > 64 or name in taken:
            name = f"{name[:57]}-{stable_hash(ref.bucket, ref.prefix)}"
        taken.add(name)
        out.append(Channel(name=name, bucket=ref.bucket, prefix=ref.prefix))
    return out


def hyperparameter_strings(values: Mapping[str, Any]) -> dict[str, str]:
    """HyperParameters are strings: strings as written, numbers and booleans as JSON (20, 0.01, true)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in sorted(values.items())}


def max_wait_seconds(training: Any) -> int | None:
    """StoppingCondition.MaxWaitTimeInSeconds for spot training (None without spot): the spec's
    max_wait, else twice max_runtime, at most 28 days and never below max_runtime."""
    if not training.spot:
        return None
    if training.max_wait is not None:
        return int(training.max_wait)
    return max(int(training.max_runtime), min(SPOT_WAIT_FACTOR * int(training.max_runtime), MAX_SECONDS))


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


@dataclass(frozen=True)
class JobValues:
    """Everything a model's training job is made of, as plain values."""

    job_name: str  # a TrainingJobName prefix in the pipeline, the full name for a one-off job
    image: str
    role_arn: str
    key_arn: str
    instance_type: str
    instance_count: int
    volume_encrypted: bool  # False for instance types with local NVMe storage (hardware-encrypted)
    max_runtime: int
    max_wait: int | None  # set iff spot
    channels: tuple[tuple[str, str], ...]  # (channel name, s3 URI)
    output_uri: str
    checkpoint_uri: str | None  # set iff spot
    hyperparameters: tuple[tuple[str, str], ...]
    environment: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]
    # In a private network: (subnets, security groups) of the job's VpcConfig.
    vpc: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def spot(self) -> bool:
        return self.max_wait is not None


def training_request(v: JobValues) -> dict[str, Any]:
    """The CreateTrainingJob request of a job (also the Arguments of the pipeline's Training step)."""
    resource: dict[str, Any] = {"InstanceType": v.instance_type, "InstanceCount": v.instance_count,
                                "VolumeSizeInGB": VOLUME_SIZE_GB}
    if v.volume_encrypted:
        resource["VolumeKmsKeyId"] = v.key_arn
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": v.max_runtime}
    request: dict[str, Any] = {
        "TrainingJobName": v.job_name,
        "AlgorithmSpecification": {"TrainingImage": v.image, "TrainingInputMode": INPUT_MODE},
        "RoleArn": v.role_arn,
        "OutputDataConfig": {"S3OutputPath": v.output_uri, "KmsKeyId": v.key_arn},
        "ResourceConfig": resource,
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": v.spot,
        "HyperParameters": dict(v.hyperparameters),
        "Environment": dict(v.environment),
        "Tags": tag_list(dict(v.tags)),
    }
    if v.channels:
        request["InputDataConfig"] = [
            {"ChannelName": name, "InputMode": INPUT_MODE,
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                             "S3DataDistributionType": "FullyReplicated"}}}
            for name, uri in v.channels
        ]
    if v.spot:
        stopping["MaxWaitTimeInSeconds"] = v.max_wait
        request["CheckpointConfig"] = {"S3Uri": v.checkpoint_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if v.vpc is not None:
        subnets, groups = v.vpc
        request["VpcConfig"] = {"SecurityGroupIds": list(groups), "Subnets": list(subnets)}
    return request


@dataclass(frozen=True)
class Registration:
    """What the RegisterModel step registers: a version an endpoint can serve as registered."""

    group: str  # model package group name
    approval: str  # the spec's registry.approval: manual | automatic
    image: str  # the inference container: the image the model's endpoint pulls (pulled_image)
    environment: Mapping[str, str] = field(default_factory=dict)  # the endpoint container's environment
    instance_types: Sequence[str] = ()  # the endpoint's instance type (SupportedRealtimeInferenceInstanceTypes)


def pipeline_definition(job: JobValues, registration: Registration | None) -> dict[str, Any]:
    """The pipeline definition rendered from templates/aws/pipeline.json.j2 (parsed: a malformed
    template fails here, not in SageMaker)."""
    from mlops_infra.templating import render_json

    values = {
        **{name: getattr(job, name) for name in job.__dataclass_fields__},
        "channels": [list(c) for c in job.channels],
        "hyperparameters": dict(job.hyperparameters),
        "environment": dict(job.environment),
        "tags": [list(t) for t in job.tags],
        "vpc": None if job.vpc is None else {"subnets": list(job.vpc[0]), "security_groups": list(job.vpc[1])},
    }
    register = None
    if registration is not None:
        register = {
            "group": registration.group,
            "approval_status": APPROVAL_STATUS[registration.approval],
            "description": f"trained by pipeline step {TRAIN_STEP}; approval: {registration.approval}",
            "image": registration.image,
            "environment": dict(sorted(registration.environment.items())),
            "instance_types": list(registration.instance_types),
        }
    return render_json(
        "aws/pipeline.json.j2",
        job=values,
        register=register,
        train_step=TRAIN_STEP,
        register_step=REGISTER_STEP,
        volume_size_gb=VOLUME_SIZE_GB,
        checkpoint_local_path=CHECKPOINT_LOCAL_PATH,
    )


def one_off_job_name(prefix: str, definition: Mapping[str, Any]) -> str:
    """A one-off job's name: its model's prefix + a hash of its whole definition (jobs are
    immutable and names are never reused, so any change is a new job with a new name)."""
    digest = stable_hash(json.dumps(definition, sort_keys=True, separators=(",", ":")), length=JOB_HASH_LENGTH)
    return f"{prefix}-{digest}"


# --- IAM --------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingScope:
    """What a group identity may act on for training, named by the stack's prefixes
    (naming.stack_prefix), so that the grant's size does not grow with the number of models and
    adding a model changes no existing grant."""

    job_prefix: str  # every training job of the stack starts with it
    repositories: str  # name pattern of the stack's training image repositories


def training_scope(namer: Namer) -> TrainingScope:
    return TrainingScope(
        job_prefix=stack_prefix(namer, "aws.sagemaker.training_job"),
        # Repository names are never truncated (at most 83 of 256 characters): "<stack>-<model>-training".
        repositories=f"{stack_prefix(namer, 'aws.ecr.repository')}*-training",
    )


def training_grants(*, partition: str, region: str, account_id: str, scope: TrainingScope) -> list[dict[str, Any]]:
    """The stack-wide statements of training (in the stack's "training" managed policy, which every
    group identity that trains attaches): pull the stack's training images, write its jobs' logs,
    run (as the pipeline) the stack's jobs. Everything is named by ARN pattern; the only "*"
    resource is ecr:GetAuthorizationToken. Passing a role and registering models are per group
    (policies.group_data_grant); a model whose image lives in another ECR repository gets its
    own grant (image_pull_grant)."""
    sm = f"arn:{partition}:sagemaker:{region}:{account_id}"
    group_arn = f"arn:{partition}:logs:{region}:{account_id}:log-group:{LOG_GROUP}"
    return [
        {"Sid": "PullTrainingImages", "Effect": "Allow", "Action": list(ECR_PULL),
         "Resource": repository_arn(partition, region, account_id, scope.repositories)},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(ECR_LOGIN), "Resource": "*"},
        {"Sid": "UseTrainingLogGroup", "Effect": "Allow", "Action": list(LOGS_GROUP), "Resource": group_arn},
        {"Sid": "WriteTrainingLogs", "Effect": "Allow", "Action": list(LOGS_STREAM),
         "Resource": f"{group_arn}:log-stream:{scope.job_prefix}*"},
        {"Sid": "RunTrainingJobs", "Effect": "Allow", "Action": list(JOB_CONTROL),
         "Resource": f"{sm}:training-job/{scope.job_prefix}*"},
    ]


def image_pull_grant(repository: str, sid: str) -> dict[str, Any]:
    """Pull access to one ECR repository named by the spec (an image outside the stack's own
    repositories): a separate inline policy per model, so adding one changes no other grant."""
    return policies.document([{"Sid": sid, "Effect": "Allow", "Action": list(ECR_PULL), "Resource": repository}])


def spec_repository_arn(partition: str, source: ImageSource) -> str | None:
    """The ARN of the ECR repository the spec's image names (None when the stack's repository serves it)."""
    if source.ecr is None:
        return None
    return repository_arn(partition, source.ecr.region, source.ecr.account, source.ecr.repository)


def volume_key_grant(key_arn: str) -> dict[str, Any]:
    """Lets EBS (on behalf of SageMaker) create the grant it needs to encrypt job volumes with the key."""
    return {
        "Sid": "EncryptJobVolumes", "Effect": "Allow", "Action": list(KMS_VOLUME_GRANT), "Resource": key_arn,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }


def tracking_trust(account_id: str) -> dict[str, Any]:
    """The MLflow tracking server's role: assumed by SageMaker on behalf of this account only."""
    return policies.document([{
        "Sid": "ServiceAssumesRole", "Effect": "Allow", "Principal": {"Service": SAGEMAKER},
        "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }])


def tracking_grants(*, partition: str, artifacts: str) -> dict[str, Any]:
    """The tracking server reads and writes its artifact store (artifacts bucket, mlflow/) and nothing else."""
    art = policies.bucket_arn(partition, artifacts)
    return policies.document([
        {"Sid": "LocateArtifactStore", "Effect": "Allow", "Action": list(policies.S3_LOCATE_BUCKET), "Resource": art},
        {"Sid": "ListArtifactStore", "Effect": "Allow", "Action": list(policies.S3_LIST_BUCKET), "Resource": art,
         "Condition": {"StringLike": {"s3:prefix": [MLFLOW_PREFIX, f"{MLFLOW_PREFIX}*"]}}},
        {"Sid": "ReadWriteArtifactStore", "Effect": "Allow",
         "Action": [*policies.S3_READ_OBJECT, *policies.S3_WRITE_OBJECT], "Resource": f"{art}/{MLFLOW_PREFIX}*"},
    ])


def tracking_key_grant(key_arn: str) -> dict[str, Any]:
    return policies.document([
        {"Sid": "UseStackKeyForArtifacts", "Effect": "Allow", "Action": list(TRACKING_KMS), "Resource": key_arn},
    ])
