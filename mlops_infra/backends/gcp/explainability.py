"""GCP explainability: Vertex Explainable AI on the served model, Vertex AI model monitoring of its attributions.

Per model with monitoring.explainability (the neutral stage makes sure it captures requests):
- its served model carries an explanation spec (serving.py passes explanation_spec() to the
  DeployedModel, which uploads the model with it): sampled Shapley attributions over the input
  features of the model's feature groups (their Vertex AI feature ids; the record id, the event
  time and the bias label are not inputs), explaining the prediction field OUTPUT_FIELD;
- a model deployment monitoring job on its endpoint (explainability_job.py): feature-attribution
  drift between prediction windows and skew against the baseline (read as CSV, like the drift
  baseline), alerting above max_attribution_drift, on the spec's schedule, sampling the logged
  requests at the endpoint's capture rate, alerts to the stack's notification channels, anomalies
  to Cloud Logging, encrypted with the stack key;
- one grant: the Vertex AI service agent, which runs the monitoring pipeline, reads the
  baseline's managed folder (the narrowest one the storage stage made for the model's group,
  which reads the same prefix), or its bucket when the baseline is a whole bucket.

bias and model_quality are gaps (the objectives model monitoring v1 has are in GAPS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.access import reader_groups
from mlops_infra.backends.gcp import grants
from mlops_infra.backends.gcp.features import column
from mlops_infra.backends.gcp.shared import ObjectGrants, ProjectServices
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.explainability import ExplainabilityOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import StorageOutputs

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.backends.context import StageContext

# Sampled Shapley takes 1 to 50 feature permutations (SampledShapleyAttribution.pathCount,
# aiplatform v1 discovery document, revision 20261106, read 2026-12-06). The spec has no knob:
# 10 is mlops-infra's choice, a middle ground between attribution error and explain latency.
PATH_COUNT = 10
# For custom containers the output key is the prediction's field to explain (ExplanationMetadata.outputs).
OUTPUT_FIELD = "prediction"
# docs.cloud.google.com/vertex-ai/docs/explainable-ai/configuring-explanations-feature-based (read 2026-12-06).
EXPLAINABLE_AI_DEPRECATED, EXPLAINABLE_AI_ENDS = "2026-03-16", "2027-03-16"
MONITOR_INTERVAL = {"hourly": "3600s", "daily": "86400s", "weekly": "604800s"}
BASELINE_FORMAT = "csv"  # the drift baseline's format too (monitoring.py)
OBJECT_VIEWER = grants.OBJECT_VIEWER


def monitored(spec: Any) -> list[Any]:
    """Models whose attributions are monitored: explainability on a capturing endpoint."""
    return [
        m
        for m in spec.models
        if m.monitoring is not None
        and m.monitoring.explainability is not None
        and m.serving is not None
        and m.serving.data_capture is not None
    ]


def input_features(spec: Any, model: Any) -> list[str]:
    """The model's explained inputs: its feature groups' features (Vertex AI feature ids), minus
    each group's record id and event time and the bias label, in spec order without repeats."""
    groups = {g.name: g for g in spec.feature_store.groups} if spec.feature_store is not None else {}
    label = model.monitoring.bias.label if model.monitoring and model.monitoring.bias else None
    found: list[str] = []
    for name in model.features or []:
        group = groups.get(name)
        if group is None:
            continue
        for feature in group.features:
            if feature.name in (group.record_id, group.event_time, label):
                continue
            if column(feature.name) not in found:
                found.append(column(feature.name))
    return found


def explanation_spec(spec: Any, model: Any) -> dict[str, Any] | None:
    """The Model.explanationSpec (aiplatform v1) the served model is uploaded with, or None."""
    if model not in monitored(spec):
        return None
    return {
        "parameters": {"sampledShapleyAttribution": {"pathCount": PATH_COUNT}},
        "metadata": {
            "inputs": {feature: {} for feature in input_features(spec, model)},
            "outputs": {OUTPUT_FIELD: {}},
        },
    }


def objective(spec: Any, model: Any, baseline_uri: str) -> dict[str, Any]:
    """The ModelMonitoringObjectiveConfig: attribution drift and skew above the spec's threshold."""
    config = model.monitoring.explainability
    thresholds = {feature: {"value": config.max_attribution_drift} for feature in input_features(spec, model)}
    dataset: dict[str, Any] = {"gcsSource": {"uris": [baseline_uri]}, "dataFormat": BASELINE_FORMAT}
    if model.monitoring.bias is not None:
        dataset["targetField"] = column(model.monitoring.bias.label)
    return {
        "explanationConfig": {"enableFeatureAttributes": True},
        "predictionDriftDetectionConfig": {"attributionScoreDriftThresholds": thresholds},
        "trainingDataset": dataset,
        "trainingPredictionSkewDetectionConfig": {"attributionScoreSkewThresholds": thresholds},
    }


def check(spec: Any, settings: Any) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        mon = model.monitoring
        if mon is None:
            continue
        base = ("models", i, "monitoring")
        if mon.explainability is not None:
            problems.append(
                finding(
                    (*base, "explainability"),
                    f"Vertex Explainable AI, which computes the attributions monitored here, is deprecated since "
                    f"{EXPLAINABLE_AI_DEPRECATED}; Google ends access on {EXPLAINABLE_AI_ENDS}",
                    hint="plan a replacement before then (docs.cloud.google.com/vertex-ai/docs/deprecations)",
                    severity="warning",
                )
            )
            if not input_features(spec, model):
                problems.append(
                    finding(
                        (*base, "explainability"),
                        "Vertex Explainable AI needs the served model's input features (the explanation "
                        "metadata's inputs), and mlops-infra takes them from the model's feature groups: "
                        "this model names none with features besides its record id and event time",
                        hint=f"add models[{i}].features: [GROUP] naming the feature_store group(s) it reads",
                    )
                )
        if mon.bias is not None:
            problems.append(BACKEND.gap("models[].monitoring.bias", (*base, "bias"), value=mon.bias.facet))
        if mon.model_quality is not None:
            problems.append(
                BACKEND.gap("models[].monitoring.model_quality", (*base, "model_quality"), value=mon.model_quality.metric)
            )
    return problems


def build(ctx: StageContext) -> ExplainabilityOutputs:
    monitors: dict[str, list[Any]] = {}
    chosen = {m.name for m in monitored(ctx.spec)}
    for model in ctx.models():
        if model.name in chosen:
            monitors[model.name] = [_monitor(ctx, model).id]
    return ExplainabilityOutputs(monitors=monitors)


def _monitor(ctx: StageContext, model: Any) -> Any:
    import pulumi

    from mlops_infra.backends.gcp.explainability_job import ExplainabilityMonitor
    from mlops_infra.backends.gcp.shared import DeployedModels

    project, region = ctx.settings.project, ctx.settings.region
    services = ctx.upstream.of(ProjectServices)
    config = model.monitoring.explainability
    baseline = config.baseline
    bucket = ctx.upstream.of(StorageOutputs).buckets[baseline.bucket]
    grant = _baseline_grant(ctx, model, bucket, agent=services.service_agents["aiplatform"])
    monitoring = ctx.upstream.find(MonitoringOutputs)
    channels = list(monitoring.channel) if monitoring is not None else []
    baseline_uri = bucket.uri.apply(lambda uri: f"{uri}/{baseline.prefix}*")
    deployed = ctx.upstream.find(DeployedModels)
    assert model.serving is not None and model.serving.data_capture is not None
    return ExplainabilityMonitor(
        ctx.logical("monitor", model.name),
        {
            "project": project,
            "region": region,
            "endpoint": ctx.upstream.of(ServingOutputs).endpoints[model.name],
            "displayName": f"{model.name} attributions (mlops-infra {ctx.spec.project}/{ctx.spec.environment})"[:128],
            "objective": baseline_uri.apply(lambda uri: objective(ctx.spec, model, uri)),
            "monitorInterval": MONITOR_INTERVAL[config.schedule],
            "samplingRate": model.serving.data_capture.sampling_percent / 100,
            "notificationChannels": channels,
            "encryptionSpec": {"kmsKeyName": services.service_keys["aiplatform"]},
            "labels": {**ctx.tags(), "mlops-model": model.name},
        },
        # Jobs configure the deployed models they find on the endpoint: the deployment first.
        opts=ctx.opts(depends_on=ctx.waits(grant, deployed.by_model.get(model.name) if deployed else None)),
    )


def _baseline_grant(ctx: StageContext, model: Any, bucket: Any, *, agent: Any) -> pulumi.Resource:
    """objectViewer for the Vertex AI service agent on the narrowest managed folder the storage
    stage made over the baseline (its group reads it), or on the bucket."""
    import pulumi_gcp as gcp

    baseline = model.monitoring.explainability.baseline
    group = group_of(model)
    covering = [p for p in reader_groups(ctx.spec)[group].reads.get(baseline.bucket, []) if baseline.prefix.startswith(p)]
    folder = max(covering, key=len) if covering else ""
    object_grants = ctx.upstream.find(ObjectGrants)
    location = f"{baseline.bucket}/{folder}" if folder else baseline.bucket
    waits = ctx.waits(object_grants.by_key.get(grants.grant_key(location, grants.group_key(group))) if object_grants else None)
    name = ctx.logical("baseline-reader", model.name)
    if not folder:
        return gcp.storage.BucketIAMMember(
            name, bucket=bucket.physical, role=OBJECT_VIEWER, member=agent, opts=ctx.opts(depends_on=waits)
        )
    return gcp.storage.ManagedFolderIamMember(
        name, bucket=bucket.physical, managed_folder=folder, role=OBJECT_VIEWER, member=agent,
        opts=ctx.opts(depends_on=waits),
    )
