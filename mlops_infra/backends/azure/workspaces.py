"""Azure workspaces: one Azure ML compute instance per workspaces.users entry, in the stack's workspace.

Each instance:
- is assigned to one person (Azure ML compute instances are personal): the Microsoft Entra object
  id that clouds.azure.workspace_users gives for the user's name, in the stack's tenant
  (clouds.azure.tenant_id, else the deploying credentials' tenant). A user without an object id is
  an error at validate: an unassigned instance would belong to whoever deploys (a CI principal);
- has the catalog's VM size of its size class (processing sizes: the cluster VMs Azure ML runs
  notebooks on too), the user's `size` or workspaces.size;
- stops itself after workspaces.idle_shutdown without activity (Azure ML accepts 15 minutes to
  3 days: a shorter one is an error, never silently lengthened);
- has SSH off and local (key) authentication off: users sign in with Entra ID only, and
  applications on it are personal (only the assigned user reaches them);
- with governance.network: private, no public IP: the stack's workspace has a managed virtual
  network (storage_workspace.py), and Azure ML places its computes in it. An instance in a managed
  network takes no subnet of ours (Azure rejects one), just as the training clusters take none.

Keys: the workspace is hbiWorkspace with the stack's customer-managed key (storage_workspace.py),
so an instance's OS and scratch disks are encrypted and its scratch disk wiped, like every compute
in it. Identities: notebooks act as the assigned user (Entra ID), never as a stack identity, so a
notebook can reach what that person may reach and no more.

Adding a user adds one compute instance (named after the user), nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.stages.base import finding
from mlops_infra.stages.workspaces import WorkspacesOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.lifecycle import WorkspaceUser
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

# ComputeInstance.idleTimeBeforeShutdown: "Minimum is 15 min, maximum is 3 days" (Azure ML REST API
# 2025-12-01, ComputeInstanceProperties; pulumi-azure-native 3.29 docstring), read 2026-12-06.
MIN_IDLE_SECONDS = 15 * 60
MAX_IDLE_SECONDS = 3 * 86400
PURPOSE = "processing"


def vm_size(user: WorkspaceUser, default: str) -> str:
    """The processing catalog's VM size of the user's size class (the spec's classes are the catalog's)."""
    return catalog.SIZE_CLASS_TYPES[PURPOSE][user.size or default]


def idle_duration(seconds: int) -> str:
    """ISO 8601 duration in minutes, as Azure ML shows it: 3600 -> 'PT60M'."""
    return f"PT{seconds // 60}M"


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    workspaces = spec.workspaces
    if workspaces is None:
        return []
    problems: list[Problem] = []
    idle = workspaces.idle_shutdown
    if not MIN_IDLE_SECONDS <= idle <= MAX_IDLE_SECONDS or idle % 60:
        problems.append(
            finding(
                ("workspaces", "idle_shutdown"),
                f"Azure ML stops an idle compute instance after 15 minutes to 3 days, in whole minutes; "
                f"{idle} seconds is not one of those",
                hint="use 15m or more, in whole minutes (e.g. 1h)",
                value=idle,
            )
        )
    known = settings.workspace_users
    for i, user in enumerate(workspaces.users):
        if user.name in known:
            continue
        problems.append(
            finding(
                ("workspaces", "users", i, "name"),
                f"Azure ML assigns a compute instance to one Microsoft Entra user by object id, and "
                f"clouds.azure.workspace_users gives none for {user.name!r}",
                hint=f"add clouds.azure.workspace_users: {{{user.name}: <object id>}} "
                "(az ad user show --id <user principal name> --query id --output tsv)",
                value=user.name,
            )
        )
    names = {u.name for u in workspaces.users}
    for name in sorted(set(known) - names):
        problems.append(
            finding(
                ("clouds", "azure", "workspace_users", name),
                f"{name!r} is not one of workspaces.users: its object id assigns no compute instance",
                hint="remove it, or add {name: " + name + "} to workspaces.users",
                value=name,
                severity="warning",
            )
        )
    return problems


def tenant(ctx: StageContext) -> Any:
    """The tenant of the assigned users: clouds.azure.tenant_id, else the deploying credentials'."""
    import pulumi
    from pulumi_azure_native import authorization

    if ctx.settings.tenant_id:
        return ctx.settings.tenant_id
    config = authorization.get_client_config_output(
        opts=pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent)
    )
    return config.tenant_id


def build(ctx: StageContext) -> WorkspacesOutputs:
    from pulumi_azure_native import machinelearningservices as ml

    workspaces = ctx.spec.workspaces
    workspace = ctx.upstream.find(WorkspaceRef)
    if workspaces is None or workspace is None:
        return WorkspacesOutputs(workspaces={})
    private = ctx.spec.governance.network == "private"
    tenant_id = tenant(ctx)
    found: dict[str, Any] = {}
    for user in sorted(workspaces.users, key=lambda u: u.name):
        object_id = ctx.settings.workspace_users.get(user.name)
        if object_id is None:
            continue  # validate reports it
        instance = ml.Compute(
            ctx.logical("notebook", user.name),
            compute_name=ctx.namer.name("azure.ml.compute_instance", user.name),
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            location=workspace.location,
            properties=ml.ComputeInstanceArgs(
                compute_type="ComputeInstance",
                description=f"mlops-infra: notebooks of {user.name}",
                disable_local_auth=True,
                properties=ml.ComputeInstancePropertiesArgs(
                    vm_size=vm_size(user, workspaces.size),
                    idle_time_before_shutdown=idle_duration(workspaces.idle_shutdown),
                    enable_node_public_ip=not private,
                    application_sharing_policy=ml.ApplicationSharingPolicy.PERSONAL,
                    compute_instance_authorization_type=ml.ComputeInstanceAuthorizationType.PERSONAL,
                    ssh_settings=ml.ComputeInstanceSshSettingsArgs(ssh_public_access=ml.SshPublicAccess.DISABLED),
                    personal_compute_instance_settings=ml.PersonalComputeInstanceSettingsArgs(
                        assigned_user=ml.AssignedUserArgs(object_id=object_id, tenant_id=tenant_id)
                    ),
                ),
            ),
            tags={**ctx.tags(), "mlops-infra/user": user.name},
            opts=ctx.opts(),
        )
        found[user.name] = instance.id
    return WorkspacesOutputs(workspaces=found)
