"""GCP workspaces: a Vertex AI Workbench instance per user or team.

Per workspaces.users[]:
- a service account of its own (the notebook's identity: each user's access is granted and
  revoked on that account alone; mlops-infra grants it no data, so a notebook starts with none);
- a Workbench instance on the catalog's machine for its size (a GPU size gets its accelerator),
  stopped after idle_shutdown (the idle-timeout-seconds metadata), root disabled, Shielded VM,
  boot and data disks encrypted with the stack key (CMEK), protected and kept by a default
  destroy (its data disk holds the user's work). With governance.network: private it sits on the
  stack's subnet without a public IP, reaching Google APIs through Private Google Access; on a
  public network it takes the project's default network.
Per stack: the Notebooks and Compute Engine APIs, and encrypt/decrypt on the key for the Compute
Engine service agent (service-PROJECT_NUMBER@compute-system.iam.gserviceaccount.com), which
encrypts the disks (cloud.google.com/vertex-ai/docs/workbench/instances/cmek).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import catalog
from mlops_infra.backends.gcp.shared import PrivateNetwork
from mlops_infra.spec.common import Compute
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.workspaces import WorkspacesOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

APIS = {"notebooks": "notebooks.googleapis.com", "compute": "compute.googleapis.com"}
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
PROJECT_INVOKE = "gcp:organizations/getProject:getProject"
BOOT_DISK_GB = 150  # the Workbench default boot disk
DATA_DISK_GB = 100  # the user's home (/home/jupyter)
DISK_TYPE = "PD_BALANCED"
# Workbench instances are zonal. Zone "b" exists in the regions checked (us-central1, europe-west1,
# europe-west4, asia-east1: gcloud compute zones list); not verified for every Vertex AI region,
# where `up` would report a missing zone.
ZONE_SUFFIX = "b"
# Idle shutdown: 10 to 1,440 minutes (cloud.google.com/vertex-ai/docs/workbench/instances/idle-shutdown).
MIN_IDLE_SECONDS = 600


def check(spec: Any, settings: Any) -> list[Problem]:
    """Idle shutdowns Workbench refuses, and a brought network naming no subnet to join."""
    if spec.workspaces is None:
        return []
    problems: list[Problem] = []
    if spec.workspaces.idle_shutdown < MIN_IDLE_SECONDS:
        problems.append(
            finding(
                ("workspaces", "idle_shutdown"),
                f"Vertex AI Workbench shuts idle instances down after {MIN_IDLE_SECONDS // 60} minutes at the soonest",
                hint=f"use idle_shutdown: {MIN_IDLE_SECONDS // 60}m or more",
                value=spec.workspaces.idle_shutdown,
            )
        )
    if spec.governance.network != "private" or settings.network.network is None:
        return problems
    return problems + [
        finding(
            ("workspaces",),
            "on GCP a Workbench instance joins a subnet, and a brought network (clouds.gcp.network.network) names none "
            "mlops-infra knows",
            hint="let the stack create its network (remove clouds.gcp.network.network), or remove workspaces",
        )
    ]


def machine(size: str, settings: Any) -> catalog.MachineSpec:
    """The Workbench machine of a size class (the training catalog's: the same work, interactively)."""
    return catalog.machine_spec(Compute.model_validate({"size": size}), "training", settings)


def build(ctx: StageContext) -> WorkspacesOutputs:
    import pulumi
    import pulumi_gcp as gcp

    spec = ctx.spec
    assert spec.workspaces is not None
    project, region = ctx.settings.project, ctx.settings.region
    zone = f"{region}-{ZONE_SUFFIX}"
    key = ctx.upstream.of(GovernanceOutputs).key_id
    network = ctx.upstream.find(PrivateNetwork)
    apis = [
        gcp.projects.Service(
            ctx.logical("api", name), project=project, service=service,
            disable_on_destroy=False, disable_dependent_services=False, opts=ctx.opts(),
        )
        for name, service in APIS.items()
    ]
    number = gcp.organizations.get_project_output(
        project_id=project, opts=pulumi.InvokeOutputOptions(parent=ctx.parent, provider=ctx.provider, depends_on=apis)
    ).number
    # Kept with the key, like every agent's key grant: without it kept disks could not be read.
    key_grant = gcp.kms.CryptoKeyIAMMember(
        ctx.logical("key-grant", "compute-agent"),
        crypto_key_id=key,
        role=ENCRYPTER_DECRYPTER,
        member=number.apply(lambda n: f"serviceAccount:service-{n}@compute-system.iam.gserviceaccount.com"),
        opts=ctx.opts(protect=True),
    )
    stack = f"{spec.project}/{spec.environment}"
    instances: dict[str, Any] = {}
    for user in spec.workspaces.users:
        account = gcp.serviceaccount.Account(
            ctx.logical("identity", user.name),
            account_id=ctx.namer.name("gcp.iam.service_account_id", "ws", user.name),
            display_name=f"mlops-infra {stack} workspace {user.name}"[:100],
            description=f"the Workbench instance of {user.name} in the mlops-infra stack {stack}",
            project=project,
            opts=ctx.opts(),
        )
        email = account.account_id.apply(lambda aid: f"{aid}@{project}.iam.gserviceaccount.com")
        spec_machine = machine(user.size or spec.workspaces.size, ctx.settings)
        disk = {"disk_size_gb": DATA_DISK_GB, "disk_type": DISK_TYPE, "disk_encryption": "CMEK", "kms_key": key}
        gce: dict[str, Any] = {
            "machine_type": spec_machine.machine_type,
            "service_accounts": [{"email": email}],
            "boot_disk": {**disk, "disk_size_gb": BOOT_DISK_GB},
            "data_disks": disk,
            "shielded_instance_config": {
                "enable_secure_boot": not spec_machine.accelerator_type,  # GPU drivers are unsigned modules
                "enable_vtpm": True,
                "enable_integrity_monitoring": True,
            },
            "metadata": {
                "idle-timeout-seconds": str(spec.workspaces.idle_shutdown),
                "notebook-disable-root": "true",
            },
            "disable_public_ip": network is not None,
        }
        if spec_machine.accelerator_type:
            gce["accelerator_configs"] = [
                {"type": spec_machine.accelerator_type, "core_count": spec_machine.accelerator_count}
            ]
        if network is not None:
            gce["network_interfaces"] = [{"network": network.network, "subnet": network.subnet}]
        instance = gcp.workbench.Instance(
            ctx.logical("instance", user.name),
            name=ctx.namer.name("gcp.workbench.instance", user.name),
            project=project,
            location=zone,
            gce_setup=gce,
            labels={**ctx.tags(), "mlops-workspace": user.name},
            opts=ctx.opts(protect=True, depends_on=[key_grant]),
        )
        instances[user.name] = instance.name.apply(lambda n: f"projects/{project}/locations/{zone}/instances/{n}")
    return WorkspacesOutputs(workspaces=instances)
