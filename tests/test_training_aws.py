"""AWS training, tracking and registry: SageMaker pipelines, one-off jobs, ECR, MLflow, model package groups.

Plans are shared through module-scoped fixtures (6 plans in this file: the two examples,
a rich spec, two variants of it and a replan for determinism). Values only the cloud knows
show as "(known after apply)"; wiring is then asserted through `dependencies`, and the
pipeline definition (a JSON string built from such values) through the template rendered
with the stage's own code.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND, catalog, policies, training
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import STYLES, job_prefix, repository_name
from mlops_infra.diff import diff_plans
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN
from mlops_infra.stages.training import checkpoint_prefix, output_prefix
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "aws"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ltv:2.0"
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "aws:ecr/repository:Repository"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
JOB = "aws:sagemaker/trainingJob:TrainingJob"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

ACCOUNT = "123456789012"
BASE = copy.deepcopy(BASE_SPEC)
BASE["clouds"] = {"aws": {**BASE["clouds"]["aws"], "account_id": ACCOUNT}}  # other backends may be mid-change

RICH: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "clouds": {"aws": {"region": "us-east-1", "account_id": ACCOUNT,
                       "overrides": {"models": {"ltv": {"training_instance_type": "ml.g5.xlarge"}}}}},
    "storage": {"buckets": [{"name": "raw"}, {"name": "features"}, {"name": "unused"}]},
    "tracking": {"enabled": True, "size": "large"},
    "models": [
        {
            "name": "churn",
            "training": {
                "image": "ghcr.io/acme/churn-train:1.4.0",
                "compute": {"size": "cpu-large"},
                "spot": True,
                "max_runtime": "2h",
                "run_on_deploy": True,
                "hyperparameters": {"epochs": 20, "learning_rate": 0.01, "early_stop": True, "optimizer": "adam"},
                "environment": {"LOG_LEVEL": "info"},
                "inputs": ["raw", {"bucket": "features", "prefix": "churn/"}],
            },
            "registry": {"approval": "manual"},
        },
        {
            "name": "ltv",
            "training": {"image": ECR_IMAGE, "compute": {"size": "gpu-small", "instance_count": 2},
                         "inputs": ["features"]},
            "registry": {"approval": "automatic"},
        },
        {
            "name": "scorer",
            "training": {"image": f"ghcr.io/acme/scorer@{DIGEST}", "compute": {"cpus": 2, "memory_gib": 8}},
        },
    ],
}


def changed(**training_changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RICH)
    data["models"][0]["training"].update(training_changes)
    return data


# --- plans (6 in all) -------------------------------------------------------------



@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return plan_for("aws", RICH)


@pytest.fixture(scope="module")
def more_epochs() -> dict[str, Any]:
    return plan_for("aws", changed(hyperparameters={**RICH["models"][0]["training"]["hyperparameters"], "epochs": 21}))


@pytest.fixture(scope="module")
def unrelated_changes() -> dict[str, Any]:
    """New tags, another model retrained differently: nothing of churn's job definition changes."""
    data = copy.deepcopy(RICH)
    data["tags"] = {"owner": "ml-platform", "team": "churn"}
    data["models"][1]["training"]["compute"]["instance_count"] = 3
    data["models"][1]["registry"] = {"approval": "manual"}
    return plan_for("aws", data)


# --- helpers ----------------------------------------------------------------------
def named(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def doc(resource: dict[str, Any], field: str = "policy") -> dict[str, Any]:
    text = resource["inputs"][field]
    assert text != UNKNOWN, f"{resource['name']}.{field} should be known before deployment"
    return json.loads(text)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(document: dict[str, Any]) -> dict[str, set[str]]:
    """action -> resources of the Allow statements."""
    out: dict[str, set[str]] = {}
    for s in as_list(document["Statement"]):
        if s["Effect"] == "Allow":
            for action in as_list(s["Action"]):
                out.setdefault(action, set()).update(as_list(s["Resource"]))
    return out


def artifacts_uri(plan: dict[str, Any]) -> str:
    return plan["outputs"]["storage"]["artifacts_uri"]


def trained_models(spec_data: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in spec_data["models"] if m.get("training")]


def definition_for(data: dict[str, Any], model_name: str) -> dict[str, Any]:
    """The pipeline definition the training stage renders for a model, with representative
    values for what only the cloud knows (the identity's and the key's ARNs)."""
    spec = spec_from(data)
    settings = spec.clouds.aws
    model = spec.model(model_name)
    namer = BACKEND.namer(spec, settings)
    image = jobs.pulled_image(image=model.training.image, partition="aws", region=settings.region, account=ACCOUNT,
                              repository=repository_name(namer, model_name))
    values = training._job_values(
        model, job_name=job_prefix(namer, model_name), image=image,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/churn-dev-{model_name}-jobs-us-east-1",
        key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0f0e0d0c-0b0a-0908-0706-050403020100",
        artifacts="s3://churn-dev-artifacts", buckets={r.bucket: f"s3://bucket-{r.bucket}"
                                                       for r in model.training.input_refs},
        instance_type=catalog.model_instance_type(model, "training", settings), tags={"managed-by": "mlops-infra"},
    )
    registration = (training._registration(namer, settings, model)(f"churn-dev-{model_name}")
                    if model.registry else None)
    return jobs.pipeline_definition(values, registration)


# --- the examples -----------------------------------------------------------------
def test_examples_declare_training_tracking_and_registry_per_model(dev, prod):
    for plan, stack in ((dev, "dev"), (prod, "prod")):
        spec = spec_from(json.loads(json.dumps(_raw(stack))))
        resources = named(plan)
        for model in spec.models:
            assert f"training-repository-{model.name}" in resources
            assert f"training-pipeline-{model.name}" in resources
            assert (f"registry-group-{model.name}" in resources) is (model.registry is not None)
            assert (f"training-job-{model.name}" in resources) is model.training.run_on_deploy
        (server,) = resources_of(plan, SERVER)
        assert server["protect"] is True
        assert plan["outputs"]["tracking"]["tracking_uri"] == UNKNOWN  # the server's ARN
        assert set(plan["outputs"]["training"]["pipelines"]) == {m.name for m in spec.models}
        assert plan["outputs"]["registry"]["registries"] == {
            m.name: resources[f"registry-group-{m.name}"]["inputs"]["modelPackageGroupName"] for m in spec.models
        }


def _raw(stack: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())


def test_examples_validate_with_a_push_target_warning_per_external_image(dev, prod):
    for plan, stack in ((dev, "dev"), (prod, "prod")):
        warnings = {w["path"]: w for w in plan["warnings"] if w["path"].endswith("training.image")}
        models = _raw(stack)["models"]
        assert set(warnings) == {f"models[{i}].training.image" for i in range(len(models))}
        for i, model in enumerate(models):
            warning = warnings[f"models[{i}].training.image"]
            tag = model["training"]["image"].rsplit(":", 1)[1]
            region, account = _raw(stack)["clouds"]["aws"]["region"], _raw(stack)["clouds"]["aws"]["account_id"]
            target = f"{account}.dkr.ecr.{region}.amazonaws.com/churn-{stack}-{model['name']}-training:{tag}"
            assert warning["severity"] == "warning" and target in warning["message"]
            assert "ECR" in warning["message"]


# --- wiring: output, key, identity --------------------------------------------------
def test_training_output_is_the_models_prefix_in_the_artifact_bucket(dev, prod, rich):
    for plan in (dev, prod, rich):
        uris = plan["outputs"]["training"]["output_uris"]
        assert uris and all(uri == f"{artifacts_uri(plan)}/{output_prefix(m)}" for m, uri in uris.items())
        # Batch scoring and data preparation pipelines write elsewhere (their own tests).
        training = [p for p in resources_of(plan, PIPELINE) if p["stage"] == "training"]
        assert sorted(p["name"].removeprefix("training-pipeline-") for p in training) == sorted(uris)
        for pipeline in training:
            assert "storage-bucket-artifacts" in pipeline["dependencies"]["pipelineDefinition"]
    job = named(rich)["training-job-churn"]["inputs"]
    assert job["outputDataConfig"]["s3OutputPath"] == f"{artifacts_uri(rich)}/models/churn/"
    definition = definition_for(RICH, "churn")
    assert definition["Steps"][0]["Arguments"]["OutputDataConfig"]["S3OutputPath"] == "s3://churn-dev-artifacts/models/churn/"


def test_everything_is_encrypted_with_the_governance_key(rich):
    resources = named(rich)
    for repo in resources_of(rich, REPOSITORY):
        (config,) = repo["inputs"]["encryptionConfigurations"]
        assert config["encryptionType"] == "KMS" and repo["dependencies"]["encryptionConfigurations"] == ["governance-key"]
    job = resources["training-job-churn"]
    assert job["dependencies"]["outputDataConfig"] == ["governance-key", "storage-bucket-artifacts"]
    assert job["dependencies"]["resourceConfig"] == ["governance-key"]  # ml.m5 has an EBS volume
    for pipeline in resources_of(rich, PIPELINE):
        assert "governance-key" in pipeline["dependencies"]["pipelineDefinition"]
    args = definition_for(RICH, "churn")["Steps"][0]["Arguments"]
    key = args["OutputDataConfig"]["KmsKeyId"]
    assert key.startswith("arn:aws:kms:") and args["ResourceConfig"]["VolumeKmsKeyId"] == key
    assert resources["tracking-keygrant-mlflow"]["dependencies"]["policy"] == ["governance-key"]


def test_gpu_types_with_local_storage_get_no_volume_key():
    # SageMaker rejects a VolumeKmsKeyId on instance types with NVMe instance storage.
    args = definition_for(RICH, "ltv")["Steps"][0]["Arguments"]
    assert args["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"  # the override
    assert "VolumeKmsKeyId" not in args["ResourceConfig"] and args["OutputDataConfig"]["KmsKeyId"]
    assert catalog.has_instance_storage("ml.g4dn.xlarge") and catalog.has_instance_storage("ml.p4d.24xlarge")
    assert catalog.has_instance_storage("ml.r5d.large") and catalog.has_instance_storage("ml.trn1.32xlarge")
    assert not catalog.has_instance_storage("ml.m5.2xlarge") and not catalog.has_instance_storage("ml.c5n.xlarge")
    assert not catalog.has_instance_storage("ml.p3.2xlarge") and not catalog.has_instance_storage("ml.c7i-flex.large")


def test_pipelines_and_jobs_run_as_their_group_identity(rich, prod):
    for plan in (rich, prod):
        # The training pipelines (batch scoring and data preparation have their own tests).
        training = [p for p in resources_of(plan, PIPELINE) if p["stage"] == "training"]
        assert training and all(p["name"].startswith("training-pipeline-") for p in training)
        for pipeline in training:
            model = pipeline["name"].removeprefix("training-pipeline-")  # each model is its own group here
            # The identity's ARN resolves once the role holds its grants: the pipeline waits for those,
            # and for no other group's (the stack's prerequisites stay bounded by the stack).
            held = {f"governance-group-{model}", f"governance-groupdata-{model}",
                    f"governance-groupattach-training-{model}"}
            assert held <= set(pipeline["dependencies"]["roleArn"]) <= held | {
                f"governance-groupattach-monitoring-{model}"}
            assert f"governance-group-{model}" in pipeline["dependencies"]["pipelineDefinition"]
            assert not [d for d in pipeline["depends_on"] if d.startswith("governance-group")]
            assert f"training-repository-{model}" in pipeline["depends_on"]
    job = named(rich)["training-job-churn"]
    assert {"governance-group-churn", "governance-groupdata-churn"} <= set(job["dependencies"]["roleArn"])
    assert "training-repository-churn" in job["depends_on"]


# --- the training request -----------------------------------------------------------
def test_rendered_pipeline_has_the_fields_sagemaker_requires():
    for model in ("churn", "ltv", "scorer"):
        definition = definition_for(RICH, model)
        assert json.loads(json.dumps(definition)) == definition  # plain JSON
        # Pipeline definition schema 2020-12-01: Version, Steps[].Name/Type/Arguments.
        assert definition["Version"] == "2020-12-01" and definition["Parameters"] == []
        train, *rest = definition["Steps"]
        assert train["Name"] == jobs.TRAIN_STEP and train["Type"] == "Training"
        args = train["Arguments"]
        # CreateTrainingJob (botocore sagemaker 2017-07-24): required RoleArn, OutputDataConfig.S3OutputPath,
        # AlgorithmSpecification.TrainingInputMode (+ TrainingImage without AlgorithmName),
        # ResourceConfig InstanceType / InstanceCount / VolumeSizeInGB, StoppingCondition.MaxRuntimeInSeconds,
        # Channel ChannelName + DataSource.S3DataSource S3DataType / S3Uri; HyperParameters are strings.
        assert args["RoleArn"].startswith("arn:aws:iam::") and args["OutputDataConfig"]["S3OutputPath"]
        assert args["AlgorithmSpecification"]["TrainingInputMode"] == "File"
        assert args["AlgorithmSpecification"]["TrainingImage"]
        resource = args["ResourceConfig"]
        assert resource["InstanceType"] in catalog.types_for("training")
        assert resource["InstanceCount"] >= 1 and resource["VolumeSizeInGB"] == jobs.VOLUME_SIZE_GB
        assert 1 <= args["StoppingCondition"]["MaxRuntimeInSeconds"] <= jobs.MAX_SECONDS
        assert args["EnableNetworkIsolation"] is True and args["EnableInterContainerTrafficEncryption"] is True
        assert all(isinstance(v, str) for v in args["HyperParameters"].values())
        for channel in args.get("InputDataConfig", []):
            s3 = channel["DataSource"]["S3DataSource"]
            assert channel["ChannelName"] and s3["S3DataType"] == "S3Prefix" and s3["S3Uri"].startswith("s3://")
        assert args["TrainingJobName"] == f"churn-dev-{model}" and len(args["TrainingJobName"]) <= 40
        assert all(set(t) == {"Key", "Value"} for t in args["Tags"])
        # The template and the request the one-off job uses are the same request.
        spec = spec_from(RICH)
        assert args == jobs.training_request(training._job_values(
            spec.model(model), job_name=args["TrainingJobName"], image=args["AlgorithmSpecification"]["TrainingImage"],
            role_arn=args["RoleArn"], key_arn=args["OutputDataConfig"]["KmsKeyId"], artifacts="s3://churn-dev-artifacts",
            buckets={r.bucket: f"s3://bucket-{r.bucket}" for r in spec.model(model).training.input_refs},
            instance_type=resource["InstanceType"], tags={"managed-by": "mlops-infra"},
        ))
        if rest:
            # CreateModelPackage: ModelPackageGroupName, InferenceSpecification.Containers[].Image / ModelDataUrl.
            (register,) = rest
            assert register["Type"] == "RegisterModel"
            reg = register["Arguments"]
            (container,) = reg["InferenceSpecification"]["Containers"]
            assert container["Image"] == args["AlgorithmSpecification"]["TrainingImage"]
            assert container["ModelDataUrl"] == {"Get": f"Steps.{jobs.TRAIN_STEP}.ModelArtifacts.S3ModelArtifacts"}
            assert reg["ModelPackageGroupName"] == f"churn-dev-{model}"


def test_inputs_become_channels_on_their_buckets():
    args = definition_for(RICH, "churn")["Steps"][0]["Arguments"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in args["InputDataConfig"]}
    assert channels == {"raw": "s3://bucket-raw/", "features": "s3://bucket-features/churn/"}
    assert "InputDataConfig" not in definition_for(RICH, "scorer")["Steps"][0]["Arguments"]  # no inputs
    # The same bucket read twice: channel names carry the prefix.
    refs = spec_from(changed(inputs=["raw", {"bucket": "raw", "prefix": "a/b/"}, "raw"])).model("churn").training
    assert [c.name for c in jobs.channels(refs.input_refs)] == ["raw-all", "raw-a-b"]


def test_hyperparameters_and_environment_are_passed_as_strings():
    args = definition_for(RICH, "churn")["Steps"][0]["Arguments"]
    assert args["HyperParameters"] == {"early_stop": "true", "epochs": "20", "learning_rate": "0.01",
                                       "optimizer": "adam"}
    assert args["Environment"] == {"LOG_LEVEL": "info"}


def test_spot_sets_max_wait_and_checkpoints(rich):
    job = named(rich)["training-job-churn"]["inputs"]
    assert job["enableManagedSpotTraining"] is True
    assert job["stoppingCondition"] == {"maxRuntimeInSeconds": 7200, "maxWaitTimeInSeconds": 14400}  # 2 x 2h
    assert job["checkpointConfig"] == {"s3Uri": f"{artifacts_uri(rich)}/{checkpoint_prefix('churn')}",
                                       "localPath": "/opt/ml/checkpoints"}
    args = definition_for(RICH, "churn")["Steps"][0]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"]["MaxWaitTimeInSeconds"] >= args["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert args["CheckpointConfig"]["S3Uri"] == "s3://churn-dev-artifacts/checkpoints/churn/"
    explicit = definition_for(changed(max_wait="5h"), "churn")["Steps"][0]["Arguments"]
    assert explicit["StoppingCondition"]["MaxWaitTimeInSeconds"] == 18000
    on_demand = definition_for(RICH, "ltv")["Steps"][0]["Arguments"]
    assert on_demand["EnableManagedSpotTraining"] is False and "CheckpointConfig" not in on_demand
    assert "MaxWaitTimeInSeconds" not in on_demand["StoppingCondition"]
    longest = definition_for(changed(max_runtime="20d"), "churn")["Steps"][0]["Arguments"]["StoppingCondition"]
    assert longest["MaxWaitTimeInSeconds"] == jobs.MAX_SECONDS  # twice 20 days, capped at 28


def test_instance_type_honours_overrides_and_counts(rich):
    assert definition_for(RICH, "churn")["Steps"][0]["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    ltv = definition_for(RICH, "ltv")["Steps"][0]["Arguments"]["ResourceConfig"]
    assert ltv["InstanceType"] == "ml.g5.xlarge" and ltv["InstanceCount"] == 2
    assert definition_for(RICH, "scorer")["Steps"][0]["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert named(rich)["training-job-churn"]["inputs"]["resourceConfig"] == {
        "instanceType": "ml.m5.2xlarge", "instanceCount": 1, "volumeSizeInGb": 30, "volumeKmsKeyId": UNKNOWN}


def test_a_size_the_catalog_cannot_serve_is_an_error_naming_aws_and_the_class():
    data = copy.deepcopy(RICH)
    data["models"][2]["training"]["compute"] = {"cpus": 8, "memory_gib": 64, "gpus": 16}
    spec = spec_from(data)
    found = {p.path: p for p in BACKEND.check(spec, spec.clouds.aws) if p.severity == "error"}
    problem = found[("models", 2, "training", "compute")]
    assert "AWS" in problem.message and "8 cpus / 64 GiB / 16 gpus" in problem.message


# --- images ---------------------------------------------------------------------------
def image_findings(image: str, region: str = "us-east-1") -> list[Any]:
    data = copy.deepcopy(RICH)
    data["clouds"]["aws"]["region"] = region
    data["models"] = [{"name": "churn", "training": {"image": image, "compute": {"size": "cpu-small"}}}]
    spec = spec_from(data)
    return [p for p in BACKEND.check(spec, spec.clouds.aws) if p.path == ("models", 0, "training", "image")]


def test_external_images_warn_with_the_exact_push_target():
    (warning,) = image_findings("ghcr.io/acme/churn-train:1.4.0")
    assert warning.severity == "warning" and warning.value == "ghcr.io/acme/churn-train:1.4.0"
    assert f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/churn-dev-churn-training:1.4.0" in warning.message
    (digest,) = image_findings(f"docker.io/library/python@{DIGEST}", region="cn-north-1")
    assert f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/churn-dev-churn-training@{DIGEST}" in digest.message
    (public,) = image_findings("public.ecr.aws/acme/train:3")  # ECR Public is not a private repository
    assert public.severity == "warning"


def test_ecr_images_in_the_region_are_used_as_written_and_elsewhere_rejected():
    assert image_findings(ECR_IMAGE) == []
    assert image_findings(f"763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training@{DIGEST}") == []
    (error,) = image_findings("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ltv:2.0")
    assert error.severity == "error" and "the job's own region" in error.message and "eu-west-1" in error.value
    assert "replicat" in error.hint
    assert error.message == BACKEND.gaps["models[].training.image"].reason  # a gap: the README lists it


def test_images_are_pulled_from_the_stack_repository_or_the_spec(rich):
    resources = named(rich)
    for model in ("churn", "ltv", "scorer"):
        repo = resources[f"training-repository-{model}"]
        assert repo["protect"] is True and repo["inputs"]["name"] == f"churn-dev-{model}-training"
        assert repo["inputs"]["imageTagMutability"] == "IMMUTABLE"
        assert repo["inputs"]["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["inputs"]["forceDelete"] is False
    images = rich["outputs"]["training"]["images"]
    assert images["ltv"] == ECR_IMAGE  # as written
    # The stack repository's URI (its account and region) + ":1.4.0"; the job waits for the repository.
    assert images["churn"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/churn-dev-churn-training:1.4.0"
    job = resources["training-job-churn"]
    assert job["inputs"]["algorithmSpecification"]["trainingImage"] == images["churn"]
    assert "training-repository-churn" in job["depends_on"]
    assert definition_for(RICH, "scorer")["Steps"][0]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == (
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/churn-dev-scorer-training@{DIGEST}")


# --- one-off jobs -----------------------------------------------------------------------
def test_run_on_deploy_adds_a_job_named_after_its_definition(rich, more_epochs, unrelated_changes):
    jobs_of = {id(p): {r["name"] for r in resources_of(p, JOB)} for p in (rich, more_epochs, unrelated_changes)}
    assert all(names == {"training-job-churn"} for names in jobs_of.values())  # only churn asks for one
    name = named(rich)["training-job-churn"]["inputs"]["trainingJobName"]
    assert name.startswith("churn-dev-churn-") and len(name) <= 63
    assert name != named(more_epochs)["training-job-churn"]["inputs"]["trainingJobName"]
    same = named(unrelated_changes)["training-job-churn"]["inputs"]
    assert same["trainingJobName"] == name
    assert same["tags"]["team"] == "churn"  # tags change in place, not the job
    assert re.fullmatch(r"churn-dev-churn-[0-9a-f]{12}", name)


def test_one_off_job_carries_the_whole_request(rich):
    job = named(rich)["training-job-churn"]["inputs"]
    assert job["enableNetworkIsolation"] is True and job["enableInterContainerTrafficEncryption"] is True
    assert job["hyperParameters"]["epochs"] == "20" and job["environment"] == {"LOG_LEVEL": "info"}
    assert {c["channelName"] for c in job["inputDataConfigs"]} == {"raw", "features"}
    assert job["algorithmSpecification"]["trainingInputMode"] == "File"
    request = {"algorithmSpecification", "checkpointConfig", "enableInterContainerTrafficEncryption",
               "enableManagedSpotTraining", "enableNetworkIsolation", "environment", "hyperParameters",
               "inputDataConfigs", "outputDataConfig", "resourceConfig", "roleArn", "stoppingCondition",
               "trainingJobName"}
    assert set(job) == request | {"tags", "timeouts"}
    assert job["timeouts"] == {"create": f"{14400 + training.CREATE_TIMEOUT_MARGIN}s"}


# --- registry -------------------------------------------------------------------------
def test_registry_groups_are_protected_and_approval_follows_the_spec(rich):
    groups = {g["name"]: g for g in resources_of(rich, GROUP)}
    assert set(groups) == {"registry-group-churn", "registry-group-ltv"}  # scorer has no registry
    assert all(g["protect"] is True for g in groups.values())
    assert groups["registry-group-ltv"]["inputs"]["modelPackageGroupName"] == "churn-dev-ltv"
    statuses = {}
    for model in ("churn", "ltv", "scorer"):
        steps = definition_for(RICH, model)["Steps"]
        statuses[model] = [s["Arguments"]["ModelApprovalStatus"] for s in steps if s["Type"] == "RegisterModel"]
    assert statuses == {"churn": ["PendingManualApproval"], "ltv": ["Approved"], "scorer": []}
    pipelines = named(rich)
    assert "registry-group-churn" in pipelines["training-pipeline-churn"]["dependencies"]["pipelineDefinition"]
    assert "and registers it" not in pipelines["training-pipeline-scorer"]["inputs"]["pipelineDescription"]


def test_changing_the_approval_mode_keeps_the_group(rich, unrelated_changes):
    # ltv switches from automatic to manual approval in `unrelated_changes`: the protected group is untouched.
    assert named(unrelated_changes)["registry-group-ltv"]["inputs"] == named(rich)["registry-group-ltv"]["inputs"] | {
        "tags": named(unrelated_changes)["registry-group-ltv"]["inputs"]["tags"]}


# --- tracking -------------------------------------------------------------------------
def test_tracking_server_uses_the_artifact_bucket_and_its_own_role(rich, prod):
    resources = named(rich)
    server = resources["tracking-server-mlflow"]
    assert server["inputs"]["artifactStoreUri"] == f"{artifacts_uri(rich)}/mlflow/"
    assert server["inputs"]["trackingServerSize"] == "Large"
    assert named(prod)["tracking-server-mlflow"]["inputs"]["trackingServerSize"] == "Medium"
    assert server["inputs"]["automaticModelRegistration"] is False
    assert server["dependencies"]["roleArn"] == ["tracking-role-mlflow"]
    assert set(server["depends_on"]) == {"tracking-grant-mlflow", "tracking-keygrant-mlflow"}
    trust = doc(resources["tracking-role-mlflow"], "assumeRolePolicy")
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    art = "arn:aws:s3:::" + resources["storage-bucket-artifacts"]["inputs"]["bucket"]
    assert allowed(doc(resources["tracking-grant-mlflow"])) == {
        "s3:GetBucketLocation": {art}, "s3:ListBucket": {art},
        "s3:GetObject": {f"{art}/mlflow/*"}, "s3:PutObject": {f"{art}/mlflow/*"},
        "s3:AbortMultipartUpload": {f"{art}/mlflow/*"},
    }
    (listing,) = [s for s in doc(resources["tracking-grant-mlflow"])["Statement"] if s.get("Condition")]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["mlflow/", "mlflow/*"]
    key = jobs.tracking_key_grant("arn:aws:kms:us-east-1:1:key/k")
    assert allowed(key) == {a: {"arn:aws:kms:us-east-1:1:key/k"} for a in ("kms:Decrypt", "kms:GenerateDataKey",
                                                                            "kms:DescribeKey")}


def test_no_tracking_without_a_tracking_block():
    plan = plan_for("aws", BASE, tracking={"enabled": False})
    assert not [r for r in plan["resources"] if r["stage"] in ("tracking", "training", "registry")]
    assert "tracking" not in plan["outputs"]


# --- least privilege --------------------------------------------------------------------
def test_training_policy_is_scoped_to_this_stacks_prefix(rich):
    resources = named(rich)
    policy = resources["governance-policy-training"]
    assert policy["inputs"]["name"] == "churn-dev-training-us-east-1"
    assert policy["dependencies"]["policy"] == ["governance-key"]  # the key's ARN is known after deployment
    spec = spec_from(RICH)
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    document = grants.managed(spec, BACKEND.namer(spec, spec.clouds.aws), spec.clouds.aws, key, ["training"])["training"]
    pairs = allowed(document)
    sm = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    for action in ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                   "sagemaker:AddTags"):
        assert pairs.pop(action) == {f"{sm}:training-job/churn-dev-*"}
    repositories = {f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/churn-dev-*-training"}
    for action in jobs.ECR_PULL:
        assert pairs.pop(action) == repositories
    assert pairs.pop("ecr:GetAuthorizationToken") == {"*"}  # no resource-level permission exists
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
    assert pairs.pop("logs:CreateLogGroup") == pairs.pop("logs:DescribeLogStreams") == {group}
    assert pairs.pop("logs:CreateLogStream") == pairs.pop("logs:PutLogEvents") == {f"{group}:log-stream:churn-dev-*"}
    for action in policies.KMS_USE_ACTIONS:
        assert pairs.pop(action) == {key}
    assert pairs.pop("kms:CreateGrant") == {key}  # churn trains on ml.m5: an EBS volume to encrypt
    assert pairs == {}
    # The patterns cover every job and repository of this stack's models, and nothing else's.
    names = {
        "training-job/": [named(rich)[f"training-pipeline-{m}"]["inputs"]["pipelineName"].removesuffix("-training")
                          for m in ("churn", "ltv", "scorer")] + [
            named(rich)["training-job-churn"]["inputs"]["trainingJobName"]],
        "repository/": [named(rich)[f"training-repository-{m}"]["inputs"]["name"] for m in ("churn", "ltv", "scorer")],
    }
    patterns = {r.split(":", 5)[5] for s in document["Statement"] for r in as_list(s["Resource"]) if r.count(":") >= 5}
    for kind, values in names.items():
        (pattern,) = [p for p in patterns if p.startswith(kind)]
        assert all(fnmatch.fnmatchcase(kind + v, pattern) for v in values), (pattern, values)
        assert not fnmatch.fnmatchcase(kind + "churn-prod-churn-training", pattern)
    # ltv trains with an image from its own ECR repository: a grant of its own on its group's role,
    # and its pipeline waits for it.
    image = doc(resources["training-imagegrant-ltv"])
    assert allowed(image) == {a: {"arn:aws:ecr:us-east-1:123456789012:repository/ltv"} for a in jobs.ECR_PULL}
    assert resources["training-imagegrant-ltv"]["inputs"]["role"] == resources["governance-group-ltv"]["inputs"]["name"]
    assert "training-imagegrant-ltv" in resources["training-pipeline-ltv"]["depends_on"]
    assert not {"training-imagegrant-churn", "training-imagegrant-scorer"} & set(resources)
    statement = jobs.volume_key_grant("arn:aws:kms:us-east-1:1:key/k")
    assert statement["Action"] == ["kms:CreateGrant"] and statement["Resource"] == "arn:aws:kms:us-east-1:1:key/k"
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_a_group_passes_only_itself_and_registers_only_its_models(rich):
    resources = named(rich)
    sm = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    for model, registers in (("churn", True), ("ltv", True), ("scorer", False)):
        pairs = allowed(doc(resources[f"governance-groupdata-{model}"]))
        role = resources[f"governance-group-{model}"]["inputs"]["name"]
        assert pairs["iam:PassRole"] == {f"arn:aws:iam::{ACCOUNT}:role/{role}"}
        packages = {f"{sm}:model-package-group/churn-dev-{model}", f"{sm}:model-package/churn-dev-{model}/*"}
        assert pairs.get("sagemaker:CreateModelPackage") == (packages if registers else None)
        writes = {f"arn:aws:s3:::{resources['storage-bucket-artifacts']['inputs']['bucket']}/{p}*"
                  for p in ([output_prefix(model)] + ([checkpoint_prefix(model)] if model == "churn" else []))}
        assert pairs["s3:PutObject"] == writes  # churn trains on spot: its checkpoints too


def test_adding_a_trained_model_changes_no_existing_grant(rich):
    data = copy.deepcopy(RICH)
    data["models"].append({"name": "another", "training": {"image": "ghcr.io/acme/another:1.0",
                                                           "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
                           "registry": {}})
    changes = diff_plans(rich, plan_for("aws", data))
    assert changes.update == [] and changes.delete == []
    assert {c["name"] for c in changes.create} == {
        "training-repository-another", "training-pipeline-another", "registry-group-another",
        # its own group identity: a role, its data policy, the stack's training policy attached
        "governance-group-another", "governance-groupdata-another", "governance-groupattach-training-another",
    }


def test_no_wildcard_action_anywhere_and_star_only_where_ecr_needs_it(dev, prod, rich):
    for plan in (dev, prod, rich):
        for r in resources_of(plan, ROLE_POLICY) + resources_of(plan, "aws:iam/role:Role"):
            for field in ("policy", "assumeRolePolicy"):
                text = r["inputs"].get(field)
                if not text or text == UNKNOWN:
                    continue
                for s in as_list(json.loads(text)["Statement"]):
                    if s["Effect"] != "Allow":
                        continue
                    actions = as_list(s["Action"])
                    assert all("*" not in a for a in actions), (r["name"], actions)
                    if "*" in as_list(s.get("Resource", [])):
                        assert actions == ["ecr:GetAuthorizationToken"], (r["name"], s)


def test_a_stack_without_registries_grants_no_registration():
    data = copy.deepcopy(RICH)
    for model in data["models"]:
        model.pop("registry", None)
    plan = plan_for("aws", data)
    for model in ("churn", "ltv", "scorer"):
        assert "sagemaker:CreateModelPackage" not in allowed(doc(named(plan)[f"governance-groupdata-{model}"]))
    assert not resources_of(plan, GROUP) and "registry" not in plan["outputs"]


def test_per_model_image_grants_count_toward_their_group_identity():
    # The stack-wide training policy keeps its size; each model pulling from a spec-named ECR
    # repository adds a grant to its group's role, and IAM caps a role's inline policies at 10240
    # characters: one group of 40 such models is too much, 40 groups of one are not.
    def models(n: int, image: str = ECR_IMAGE, group: str | None = None) -> list[dict[str, Any]]:
        return [{"name": f"model-{i:02d}-" + "m" * 20, "registry": {}, **({"group": group} if group else {}),
                 "training": {"image": image.replace("/ltv:", f"/ltv-{i}:"), "compute": {"size": "cpu-small"}}}
                for i in range(n)]

    def problems(data_models: list[dict[str, Any]]) -> list[Any]:
        spec = spec_from(BASE, models=data_models)
        return [p for p in BACKEND.check(spec, spec.clouds.aws) if "IAM allows" in p.message]

    (problem,) = problems(models(40, group="team"))
    assert problem.path == ("models", 0, "group") and "model group 'team'" in problem.message
    assert "10240" in problem.message
    assert not problems(models(40))
    assert not problems(models(200, "ghcr.io/acme/ltv:1.0"))
    assert not problems(models(10, "ghcr.io/acme/ltv:1.0", group="team"))  # stack repositories: no pull grant
    one, many = (jobs.training_scope(BACKEND.namer(s, s.clouds.aws))
                 for s in (spec_from(BASE, models=models(1)), spec_from(BASE, models=models(200))))
    assert one == many


# --- other checks -----------------------------------------------------------------------
def test_environment_and_hyperparameters_sagemaker_would_reject_are_errors():
    data = changed(environment={"1BAD": "x", "GOOD_ONE": "y"}, hyperparameters={"long": "v" * 2501, "ok": 1})
    spec = spec_from(data)
    found = {p.path: p for p in BACKEND.check(spec, spec.clouds.aws) if p.severity == "error"}
    assert set(found) == {("models", 0, "training", "environment", "1BAD"),
                          ("models", 0, "training", "hyperparameters", "long")}


# --- names, tags, protection, determinism ---------------------------------------------
NAME_INPUTS = {
    REPOSITORY: ("name", "aws.ecr.repository"),
    PIPELINE: ("pipelineName", "aws.sagemaker.pipeline"),
    JOB: ("trainingJobName", "aws.sagemaker.training_job"),
    GROUP: ("modelPackageGroupName", "aws.sagemaker.model_package_group"),
    SERVER: ("trackingServerName", "aws.sagemaker.mlflow_tracking_server"),
    "aws:iam/role:Role": ("name", "aws.iam.role"),
}


def test_physical_names_keep_the_cloud_rules(dev, prod, rich):
    rules = name_rules()
    assert set(STYLES) <= set(rules)
    seen = set()
    for plan in (dev, prod, rich):
        for r in plan["resources"]:
            if r["type"] in NAME_INPUTS and r["stage"] in ("training", "tracking", "registry"):
                field, kind = NAME_INPUTS[r["type"]]
                assert rules[kind].accepts(r["inputs"][field]), (kind, r["inputs"][field])
                seen.add(r["type"])
    assert seen == set(NAME_INPUTS)


def test_long_names_keep_job_prefixes_short_enough():
    spec = spec_from(BASE, project="a-very-long-project-name", environment="production-east1")
    namer = BACKEND.namer(spec, spec.clouds.aws)
    prefix = job_prefix(namer, "a-model-with-a-rather-long-name-indeed")
    assert len(prefix) <= 40 and name_rules()["aws.sagemaker.training_job"].accepts(prefix)
    full = jobs.one_off_job_name(prefix, {"any": "definition"})
    assert len(full) <= 63 and name_rules()["aws.sagemaker.training_job"].accepts(full)


def test_new_resources_are_tagged_protected_and_use_the_provider(rich):
    stateful = {REPOSITORY, GROUP, SERVER}
    for r in rich["resources"]:
        if r["stage"] not in ("training", "tracking", "registry") or not r["custom"]:
            continue
        assert r["provider"] == "aws" and r["parent"] == r["stage"], r["name"]
        assert r["protect"] is (r["type"] in stateful), r["name"]
        if r["type"] != ROLE_POLICY:
            assert r["inputs"]["tags"]["mlops-stage"] == r["stage"], r["name"]
            assert r["inputs"]["tags"]["managed-by"] == "mlops-infra", r["name"]


def test_the_same_spec_plans_to_the_same_document(rich):
    assert json.dumps(plan_for("aws", RICH), sort_keys=True) == json.dumps(rich, sort_keys=True)


def test_sdk_args_follow_the_training_job_argument_names():
    import inspect

    import pulumi_aws as aws

    request = jobs.training_request(jobs.JobValues(
        job_name="j", image="i", role_arn="r", key_arn="k", instance_type="ml.m5.large", instance_count=1,
        volume_encrypted=True, max_runtime=60, max_wait=120, channels=(("c", "s3://b/"),), output_uri="s3://o/",
        checkpoint_uri="s3://c/", hyperparameters=(("h", "1"),), environment=(("E_1", "v"),), tags=()))
    args = training.sdk_args(request)
    parameters = inspect.signature(aws.sagemaker.TrainingJobArgs.__init__).parameters
    assert set(args) <= set(parameters)
    assert args["resource_config"] == {"instance_type": "ml.m5.large", "instance_count": 1,
                                       "volume_size_in_gb": 30, "volume_kms_key_id": "k"}
    assert args["environment"] == {"E_1": "v"}  # user keys untouched
    aws.sagemaker.TrainingJobArgs(**args)  # the SDK accepts every argument
