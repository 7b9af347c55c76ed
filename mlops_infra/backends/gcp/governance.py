"""GCP governance: the Cloud KMS key, the workload service accounts, their key grants, audit logs.

When the spec uses an ML stage it also enables the Google APIs those stages call and lets each
one's service agent use the key: Vertex AI (metadata store, TensorBoard, custom jobs, model
upload, endpoints), Cloud Workflows (workflow source and executions), Artifact Registry (image
layers), BigQuery (captured requests, through its encryption service account) and Pub/Sub (the
retraining topics) encrypt with it as their service agents, not as the workload identities.

Monitoring and retraining add APIs that encrypt nothing with the key (Cloud Monitoring, Cloud
Scheduler, Eventarc, Workflow Executions), each enabled only when the spec uses it; the Cloud
Monitoring service agent when drift alerts publish to Pub/Sub; and, when anything starts
workflows on its own (scheduler jobs, Eventarc triggers), a custom role holding only
workflows.executions.create for the automation identity. Workflows has no resource-level IAM
(its roles are granted on projects only, and pulumi-gcp has no workflow IAM resource), so that
one project-level grant is the narrowest there is: backend.check() says so.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp.naming import custom_role_id
from mlops_infra.spec.models import SpecBase
from mlops_infra.stages import stage
from mlops_infra.stages.governance import IDENTITIES, GovernanceOutputs, Identity

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
KEY_USERS = ("training", "serving")  # automation gets no key access yet
# Versions of a destroyed key stay recoverable this long (the Cloud KMS default; up to 120 days).
DESTROY_SCHEDULED_DURATION = f"{30 * 86400}s"
# Data Access audit logs: who read and wrote which object. For Cloud KMS, ADMIN_READ records who
# read key metadata and IAM policies (key changes are Admin Activity logs, always on); KMS
# DATA_READ/DATA_WRITE would log every encrypt/decrypt the Cloud Storage agent makes, a volume
# out of proportion with what storage DATA_READ/DATA_WRITE already tells.
AUDITED_SERVICES = {
    "storage.googleapis.com": ("DATA_READ", "DATA_WRITE"),
    "cloudkms.googleapis.com": ("ADMIN_READ",),
}
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
# Starting a workflow execution (Cloud Scheduler's OAuth token, Eventarc's push) is
# projects.locations.workflows.executions.create: workflows.executions.create on the workflow,
# which Workflows authorizes at the project (roles/workflows.invoker is grantable on projects
# only). The predefined invoker also reads executions and sends callbacks: this role does not.
STARTER_PERMISSIONS = ("workflows.executions.create",)


def ml_apis(spec: SpecBase) -> list[str]:
    """The ML APIs the spec needs: Vertex AI for tracking, training, registry and serving;
    Artifact Registry for training and serving (the repositories of their images); Workflows
    for training and drift monitoring (the workflows that run them); BigQuery when an endpoint
    captures requests; Pub/Sub when topics carry new-object notices or drift alerts."""
    used = {name: stage(name).used(spec) for name in ("tracking", "training", "registry", "serving")}
    names = ["aiplatform"] if any(used.values()) else []
    if used["training"] or used["serving"]:
        names.append("artifactregistry")
    if used["training"] or auto.drift_models(spec):
        names.append("workflows")
    if any(m.serving is not None and m.serving.data_capture is not None for m in spec.models):
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


def build(ctx: StageContext) -> GovernanceOutputs:
    project, region = ctx.settings.project, ctx.settings.region
    labels = ctx.tags()

    # Key rings and keys cannot be deleted on GCP (destroy only forgets the ring and schedules the
    # key's versions for destruction): both are protected. Key rings carry no labels.
    ring_name = ctx.namer.name("gcp.kms.key_ring", "keyring")
    ring = gcp.kms.KeyRing(
        ctx.logical("key-ring"),
        name=ring_name,
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

    identities: dict[str, Identity] = {}
    for role in IDENTITIES:
        account_id = ctx.namer.name("gcp.iam.service_account_id", role)
        account = gcp.serviceaccount.Account(
            ctx.logical("identity", role),
            account_id=account_id,
            display_name=f"mlops-infra {ctx.spec.project}/{ctx.spec.environment} {role}",
            description=f"{role} workloads of the mlops-infra stack {ctx.spec.project}/{ctx.spec.environment}",
            project=project,
            opts=ctx.opts(),
        )
        # <account_id>@<project>.iam.gserviceaccount.com: known before deployment, and derived
        # from the account's output so grants wait for the account.
        email = account.account_id.apply(lambda aid: f"{aid}@{project}.iam.gserviceaccount.com")
        identities[role] = Identity(role=role, id=email, principal=email.apply(lambda e: f"serviceAccount:{e}"))

    for role in KEY_USERS:
        gcp.kms.CryptoKeyIAMMember(
            ctx.logical("key-grant", role),
            crypto_key_id=key_path,
            role=ENCRYPTER_DECRYPTER,
            member=identities[role].principal,
            opts=ctx.opts(),
        )

    # Cloud Storage encrypts with the key as its project service agent. The invoke also creates
    # the agent when the project has none yet. Buckets must wait for this grant, or the first
    # deployment fails: key_id below carries it as a dependency.
    agent = gcp.storage.get_project_service_account_output(
        project=project, opts=pulumi.InvokeOutputOptions(parent=ctx.parent, provider=ctx.provider)
    )
    agent_grant = gcp.kms.CryptoKeyIAMMember(
        ctx.logical("key-grant", "storage-agent"),
        crypto_key_id=key_path,
        role=ENCRYPTER_DECRYPTER,
        member=agent.member,
        opts=ctx.opts(),
    )
    key_id = pulumi.Output.all(key_path, agent_grant.role).apply(lambda parts: parts[0])

    service_keys, service_agents = _ml_apis(ctx, key_path)
    service_agents["storage"] = agent.member
    service_agents.update(_plain_apis(ctx))
    if auto.starts_workflows(ctx.spec):
        _starter_grant(ctx, identities["automation"])

    if ctx.spec.governance.audit_logs:
        for service, log_types in AUDITED_SERVICES.items():
            # Authoritative for its service in the whole project, and shared by every stack there:
            # kept on destroy so removing one stack does not switch audit logging off for others.
            gcp.projects.IAMAuditConfig(
                ctx.logical("audit", _AUDIT_LOGICAL[service]),
                project=project,
                service=service,
                audit_log_configs=[{"log_type": t} for t in log_types],
                opts=ctx.opts(retain_on_delete=True),
            )

    return GovernanceOutputs(
        key_id=key_id,
        identities=identities,
        scope=project,
        # service_keys[api]: the key path, available once that API's agent may use it (resources
        # encrypted by the API take it from here); service_agents[api]: the agent's IAM member
        # (also "storage", Cloud Storage's, and "monitoring" when drift alerts go to Pub/Sub).
        extra={"key_ring_id": ring_id, "service_keys": service_keys, "service_agents": service_agents},
    )


def _ml_apis(ctx: StageContext, key_path: pulumi.Output) -> tuple[dict[str, pulumi.Output], dict[str, pulumi.Output]]:
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
        grant = gcp.kms.CryptoKeyIAMMember(
            ctx.logical("key-grant", f"{name}-agent"),
            crypto_key_id=key_path,
            role=ENCRYPTER_DECRYPTER,
            member=member,
            opts=ctx.opts(),
        )
        keys[name] = pulumi.Output.all(key_path, grant.role).apply(lambda parts: parts[0])
        agents[name] = member
    return keys, agents


def _plain_apis(ctx: StageContext) -> dict[str, pulumi.Output]:
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


def _starter_grant(ctx: StageContext, automation: Identity) -> None:
    project = ctx.settings.project
    role = gcp.projects.IAMCustomRole(
        ctx.logical("role", "workflow-starter"),
        project=project,
        role_id=custom_role_id(ctx.namer, "workflow", "starter"),
        title=f"mlops-infra {ctx.spec.project}/{ctx.spec.environment} workflow starter",
        description="Start executions of the stack's workflows (retraining and drift runs)",
        permissions=list(STARTER_PERMISSIONS),
        stage="GA",
        opts=ctx.opts(),
    )
    # Project-level: the narrowest scope Workflows authorizes (see the module docstring).
    gcp.projects.IAMMember(
        ctx.logical("project-grant", "workflow-starter", "automation"),
        project=project,
        role=role.role_id.apply(lambda rid: f"projects/{project}/roles/{rid}"),
        member=automation.principal,
        opts=ctx.opts(),
    )
