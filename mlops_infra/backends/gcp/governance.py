"""GCP governance: the Cloud KMS key, the workload service accounts, audit logs.

Identities. "serving" (endpoints) and "automation" (workflows, schedules, triggers) are
stack-wide. Each model group (models[].group, default the model's own name:
mlops_infra/access.py) gets a service account of its own that runs its models' custom jobs and
drift workflows and reads only their data (storage.py grants it per managed folder), so no
identity's grants grow with the fleet. What group identities need on the project (writing logs,
and for drift a BigQuery job and a metric write) is one custom "worker" role each: one principal
appearance per group in the project's policy, which validate counts (backends/gcp/grants.py).

Keys. Only service agents use the key: Cloud Storage, Vertex AI, Workflows, Artifact Registry,
BigQuery and Pub/Sub encrypt and decrypt as themselves, so a workload identity reading an
encrypted object needs no key permission (cloud.google.com/storage/docs/encryption/
using-customer-managed-keys asks only for object permissions of users). The agents' key grants
keep kept data readable, so a default destroy keeps them with the key (kept_types).

When the spec uses an ML stage this stage also enables the Google APIs those stages call and
lets each one's service agent use the key: Vertex AI (metadata store, TensorBoard, custom jobs,
model upload, endpoints), Cloud Workflows (workflow source and executions), Artifact Registry
(image layers), BigQuery (captured requests, through its encryption service account) and
Pub/Sub (the retraining topics). APIs are never disabled on destroy: other stacks and people in
the project may use them, so several stacks may declare the same API without owning it.

Monitoring and retraining add APIs that encrypt nothing with the key (Cloud Monitoring, Cloud
Scheduler, Eventarc, Workflow Executions), each enabled only when the spec uses it; the Cloud
Monitoring service agent when drift alerts publish to Pub/Sub; and, when anything starts
workflows on its own (scheduler jobs, Eventarc triggers), a custom role holding only
workflows.executions.create for the automation identity. Workflows has no resource-level IAM
(its roles are granted on projects only, and pulumi-gcp has no workflow IAM resource), so that
one project-level grant is the narrowest there is.

Network. With governance.network: private this stage also builds (or adopts) the private
network the Vertex AI work uses: governance_network.py.

Project singletons. The Data Access audit configuration is one per service and project: only
the stack that owns the project's singletons (governance.singletons: owned) declares it, and it
stays in the project even when that stack is torn down (retain_on_delete), since the other
stacks there rely on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.access import reader_groups
from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp import fleet, governance_network, grants
from mlops_infra.backends.gcp.fleet import AUDITED_SERVICES, STACK_IDENTITIES
from mlops_infra.backends.gcp.naming import group_account_id, key_ring_name
from mlops_infra.backends.gcp.roles import project_grant, stack_roles
from mlops_infra.backends.gcp.scheduling import push_grant
from mlops_infra.backends.gcp.shared import ProjectServices, PushGrant, WorkerGrants
from mlops_infra.spec.models import SpecBase
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import stage
from mlops_infra.stages.governance import GovernanceOutputs, Identity

if TYPE_CHECKING:
    import pulumi
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
DISPLAY_NAME_MAX = 100  # serviceAccounts.create: displayName at most 100 characters
DESCRIPTION_MAX = 256  # ... and description at most 256
# Versions of a destroyed key stay recoverable this long (the Cloud KMS default; up to 120 days).
DESTROY_SCHEDULED_DURATION = f"{30 * 86400}s"
_AUDIT_LOGICAL = {"storage.googleapis.com": "storage", "cloudkms.googleapis.com": "kms"}
# Short name -> API; each API's service agent (service-PROJECT_NUMBER@gcp-sa-<name>.iam...) gets
# encrypt/decrypt on the key. Sources: cloud.google.com/vertex-ai/docs/general/cmek,
# cloud.google.com/workflows/docs/use-cmek, cloud.google.com/artifact-registry/docs/cmek.
# BigQuery encrypts as its encryption service account (bq-PROJECT_NUMBER@bigquery-encryption...),
# which projects.getServiceAccount tells (cloud.google.com/bigquery/docs/customer-managed-encryption).
# Pub/Sub: service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com encrypts CMEK topics
# (cloud.google.com/pubsub/docs/encryption).
ML_APIS = {
    "aiplatform": "aiplatform.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "bigquery": "bigquery.googleapis.com",
    "pubsub": "pubsub.googleapis.com",
    "workflows": "workflows.googleapis.com",
}
BIGQUERY = "bigquery"
# APIs the monitoring and retraining stages call that keep nothing under the key: enabled only.
PLAIN_APIS = {
    "cloudscheduler": "cloudscheduler.googleapis.com",
    "eventarc": "eventarc.googleapis.com",
    "monitoring": "monitoring.googleapis.com",
    "workflowexecutions": "workflowexecutions.googleapis.com",
}


def ml_apis(spec: SpecBase) -> list[str]:
    """The ML APIs the spec needs: Vertex AI for tracking, training, registry and serving;
    Artifact Registry for training and serving (the repositories of their images); Workflows
    for training and drift monitoring (the workflows that run them); BigQuery when an endpoint
    captures requests; Pub/Sub when topics carry new-object notices or drift alerts."""
    used = {
        name: stage(name).used(spec)
        for name in ("tracking", "training", "registry", "serving", "features", "data_prep")
    }
    batch = bool(auto.batch_models(spec))  # batch prediction jobs, run by a workflow per model
    names = ["aiplatform"] if any(used.values()) or batch else []
    if used["training"] or used["serving"]:
        names.append("artifactregistry")
    if used["training"] or used["data_prep"] or auto.drift_models(spec) or batch:
        names.append("workflows")
    if used["features"] or any(m.serving is not None and m.serving.data_capture is not None for m in spec.models):
        names.append(BIGQUERY)
    if auto.uses_pubsub(spec):
        names.append("pubsub")
    return names


def plain_apis(spec: SpecBase) -> list[str]:
    """Cloud Monitoring for the monitoring stage; Cloud Scheduler for drift runs and scheduled
    retraining; Eventarc for the new-data and drift triggers; Workflow Executions (the API
    scheduler jobs and triggers call) whenever something starts workflows."""
    names = ["monitoring"] if stage("monitoring").used(spec) else []
    if auto.uses_scheduler(spec):
        names.append("cloudscheduler")
    if auto.uses_pubsub(spec):
        names.append("eventarc")
    if auto.starts_workflows(spec):
        names.append("workflowexecutions")
    return sorted(names)


def check(spec: Any, settings: Any) -> list[Problem]:
    """What the stack claims in its project (IAM policy sizes, singletons, names GCP never
    frees), and its private network (governance_network.py)."""
    from mlops_infra.backends.gcp import BACKEND

    namer = BACKEND.namer(spec, settings)
    problems = fleet.access_problems(spec, settings, namer)
    problems += fleet.external_problems(spec, settings)
    problems += fleet.reserved_name_problems(spec, settings, namer)
    problems += governance_network.check(spec, settings)
    return problems


def build(ctx: StageContext) -> GovernanceOutputs:
    import pulumi
    import pulumi_gcp as gcp

    project, region = ctx.settings.project, ctx.settings.region
    labels = ctx.tags()

    # Key rings and keys cannot be deleted on GCP (destroy only forgets the ring and schedules the
    # key's versions for destruction): both are protected, and clouds.gcp.name_generation gives a
    # stack deployed again after `destroy --delete-data` a new ring. Key rings carry no labels.
    ring = gcp.kms.KeyRing(
        ctx.logical("key-ring"),
        name=key_ring_name(ctx.namer, ctx.settings),
        location=region,
        project=project,
        opts=ctx.opts(protect=True),
    )
    # Ids derived from names (the formats the provider documents for KeyRing and CryptoKey ids),
    # so plans show them; taken from the resources' own outputs, so they carry the dependency.
    ring_id = ring.name.apply(lambda name: f"projects/{project}/locations/{region}/keyRings/{name}")
    key = gcp.kms.CryptoKey(
        ctx.logical("key"),
        name=ctx.namer.name("gcp.kms.crypto_key", "key"),
        key_ring=ring_id,
        purpose="ENCRYPT_DECRYPT",
        rotation_period=f"{ctx.spec.governance.key_rotation_days * 86400}s",
        destroy_scheduled_duration=DESTROY_SCHEDULED_DURATION,
        version_template={"algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION", "protection_level": "SOFTWARE"},
        labels=labels,
        opts=ctx.opts(protect=True),
    )
    key_path = pulumi.Output.all(ring_id, key.name).apply(lambda parts: f"{parts[0]}/cryptoKeys/{parts[1]}")

    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    identities = {
        role: _account(
            ctx,
            ctx.logical("identity", role),
            account_id=ctx.namer.name("gcp.iam.service_account_id", role),
            display_name=f"mlops-infra {stack} {role}",
            description=f"{role} workloads of the mlops-infra stack {stack}",
            role=role,
        )
        for role in STACK_IDENTITIES
    }

    # Cloud Storage encrypts with the key as its project service agent. The invoke also creates
    # the agent when the project has none yet. Buckets must wait for this grant, or the first
    # deployment fails: key_id below carries it as a dependency.
    agent = gcp.storage.get_project_service_account_output(
        project=project, opts=pulumi.InvokeOutputOptions(parent=ctx.parent, provider=ctx.provider)
    )
    agent_grant = _key_grant(ctx, "storage-agent", key_path, agent.member)
    key_id = pulumi.Output.all(key_path, agent_grant.role).apply(lambda parts: parts[0])

    service_keys, service_agents = _ml_apis(ctx, key_path)
    service_agents["storage"] = agent.member
    service_agents.update(_plain_apis(ctx))
    roles = stack_roles(ctx)
    ctx.share(ProjectServices(key_ring_id=ring_id, service_keys=service_keys, service_agents=service_agents, roles=roles))
    groups = _groups(ctx, stack, roles)
    if auto.starts_workflows(ctx.spec):
        # Project-level: the narrowest scope Workflows authorizes (see the module docstring).
        project_grant(ctx, grants.STARTER, "automation", role=roles[grants.STARTER], member=identities["automation"].principal)

    if ctx.spec.governance.audit_logs and ctx.spec.governance.singletons == "owned":
        for service, log_types in AUDITED_SERVICES.items():
            # Authoritative for its service in the whole project, and shared by every stack there:
            # kept by a default destroy, and left in the project even by --delete-data.
            gcp.projects.IAMAuditConfig(
                ctx.logical("audit", _AUDIT_LOGICAL[service]),
                project=project,
                service=service,
                audit_log_configs=[{"log_type": t} for t in log_types],
                opts=ctx.opts(protect=True, retain_on_delete=True),
            )

    if auto.push_grant_in_governance(ctx.spec):
        # Every Eventarc trigger of the stack pushes with tokens of the automation identity.
        ctx.upstream.add(PushGrant(push_grant(ctx, identities["automation"], service_agents["pubsub"])))
    governance_network.build(ctx)
    return GovernanceOutputs(key_id=key_id, identities=identities, scope=project, groups=groups)


def _account(
    ctx: StageContext, logical: str, *, account_id: str, display_name: str, description: str, role: str
) -> Identity:
    import pulumi_gcp as gcp

    account = gcp.serviceaccount.Account(
        logical,
        account_id=account_id,
        display_name=display_name[:DISPLAY_NAME_MAX],
        description=description[:DESCRIPTION_MAX],
        project=ctx.settings.project,
        opts=ctx.opts(),
    )
    project = ctx.settings.project
    # <account_id>@<project>.iam.gserviceaccount.com: known before deployment, and derived from
    # the account's output so grants wait for the account.
    email = account.account_id.apply(lambda aid: f"{aid}@{project}.iam.gserviceaccount.com")
    return Identity(role=role, id=email, principal=email.apply(lambda e: f"serviceAccount:{e}"))


def _groups(ctx: StageContext, stack: str, roles: dict[str, pulumi.Output]) -> dict[str, Identity]:
    """A service account per model group, and its worker role on the project."""
    work = grants.group_work(ctx.spec)
    identities: dict[str, Identity] = {}
    # Stays in this stack (resources never cross stacks): drift schedules wait for their group's.
    worker_grants = WorkerGrants()
    ctx.upstream.add(worker_grants)
    for group, group_info in reader_groups(ctx.spec).items():
        identity = _account(
            ctx,
            ctx.logical("identity", "group", group),
            account_id=group_account_id(ctx.namer, group),
            display_name=f"mlops-infra {stack} group {group}",
            description=f"model group {group} of the mlops-infra stack {stack}: trains its models "
            f"({', '.join(group_info.models)}) and reads their data",
            role="training",
        )
        identities[group] = identity
        if work[group]:
            # Drift schedules wait for this grant (monitoring.py), in the same stack.
            worker_grants.by_group[group] = project_grant(
                ctx, "worker", group, role=roles[grants.worker_role(work[group])], member=identity.principal
            )
    return identities


def _key_grant(ctx: StageContext, who: str, key_path: pulumi.Output, member: pulumi.Input[str]) -> gcp.kms.CryptoKeyIAMMember:
    """A service agent's encrypt/decrypt on the key: kept with the key, as what keeps kept data readable."""
    import pulumi_gcp as gcp

    return gcp.kms.CryptoKeyIAMMember(
        ctx.logical("key-grant", who),
        crypto_key_id=key_path,
        role=ENCRYPTER_DECRYPTER,
        member=member,
        opts=ctx.opts(protect=True),
    )


def _ml_apis(ctx: StageContext, key_path: pulumi.Output) -> tuple[dict[str, pulumi.Output], dict[str, pulumi.Output]]:
    import pulumi
    import pulumi_gcp as gcp

    project = ctx.settings.project
    keys: dict[str, pulumi.Output] = {}
    agents: dict[str, pulumi.Output] = {}
    for name in ml_apis(ctx.spec):
        # Left enabled on destroy: other stacks or people in the project may use the API.
        api = gcp.projects.Service(
            ctx.logical("api", name),
            project=project,
            service=ML_APIS[name],
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=ctx.opts(),
        )
        if name == BIGQUERY:
            # BigQuery's encryption account is not a service identity: projects.getServiceAccount
            # tells it (and creates it on first use). Asked once the API is on.
            member = gcp.bigquery.get_default_service_account_output(
                project=project,
                opts=pulumi.InvokeOutputOptions(parent=ctx.parent, provider=ctx.provider, depends_on=[api]),
            ).member
        else:
            # Creates the service agent if the project has none yet (agents appear lazily) and
            # tells its email, which holds the project number that only the cloud knows.
            member = gcp.projects.ServiceIdentity(
                ctx.logical("service-agent", name),
                project=project,
                service=api.service,
                opts=ctx.opts(),
            ).member
        grant = _key_grant(ctx, f"{name}-agent", key_path, member)
        keys[name] = pulumi.Output.all(key_path, grant.role).apply(lambda parts: parts[0])
        agents[name] = member
    return keys, agents


def _plain_apis(ctx: StageContext) -> dict[str, pulumi.Output]:
    import pulumi_gcp as gcp

    agents: dict[str, pulumi.Output] = {}
    for name in plain_apis(ctx.spec):
        api = gcp.projects.Service(
            ctx.logical("api", name),
            project=ctx.settings.project,
            service=PLAIN_APIS[name],
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=ctx.opts(),
        )
        if name == "monitoring" and auto.drift_retrained(ctx.spec):
            # Cloud Monitoring publishes alerts to Pub/Sub channels as its notification agent,
            # service-PROJECT_NUMBER@gcp-sa-monitoring-notification.iam.gserviceaccount.com
            # (created here if the project has none yet); monitoring.py lets it publish to the
            # drift topics.
            agents["monitoring"] = gcp.projects.ServiceIdentity(
                ctx.logical("service-agent", name),
                project=ctx.settings.project,
                service=api.service,
                opts=ctx.opts(),
            ).member
    return agents
