"""What Azure cannot do as a spec asks, with the reason: data (Backend.gaps).

The stage modules' checks report these where the spec asks for them (AzureBackend.gap), and the
README's per-cloud table of gaps is generated from this mapping (python -m mlops_infra.docs gaps).
Keys name the spec feature: its dotted path, with the value or condition that Azure cannot meet.
"""

from __future__ import annotations

from mlops_infra.backends.azure.serving_rules import MIN_COOLDOWN_SECONDS
from mlops_infra.backends.base import Gap

GAPS: dict[str, Gap] = {
    # --- storage ----------------------------------------------------------------------------------
    "storage.buckets[].versioning.false": Gap(
        "blob versioning is account-wide on Azure and the stack's buckets share one storage account: "
        "the bucket stays versioned",
        hint="old versions still expire after noncurrent_expire_after_days",
        severity="warning",
    ),
    # --- tracking ---------------------------------------------------------------------------------
    "tracking.size": Gap(
        "has no effect on Azure: the Azure ML workspace's MLflow server is not sized",
        hint="remove size, or keep it for the other clouds",
        severity="warning",
    ),
    # --- training ---------------------------------------------------------------------------------
    "models[].training.max_wait": Gap(
        "has no effect on Azure: low-priority compute has no wait limit, only max_runtime applies",
        hint="remove max_wait, or keep it for the other clouds",
        severity="warning",
    ),
    "models[].training.evaluation failures to notify.webhook": Gap(
        "Azure ML job notifications are emails (or Azure DevOps webhooks): a retraining run whose new version fails "
        "the evaluation gate mails monitoring.notify.emails, and the webhook is not told",
        hint="watch failed pipeline runs in Azure ML studio, or rely on the emails",
        severity="warning",
    ),
    # --- registry ---------------------------------------------------------------------------------
    "models[].registry.approval.manual": Gap(
        "Azure ML has no approval gate on model versions: mlops-infra records approval: manual as the model "
        "container's 'approval' tag, and nothing in Azure stops an unapproved version from serving",
        hint="keep manual approval in your release process, or use approval: automatic",
        severity="warning",
    ),
    # --- serving ----------------------------------------------------------------------------------
    "models[].serving.rollout.linear": Gap(
        "Azure ML cannot step traffic up by itself: a linear rollout needs something to move the split every "
        "`wait`, and managed online endpoints only hold the split they are given",
        hint="use mode: canary (the split holds until the next release or until you set mode: all-at-once)",
    ),
    "models[].serving.rollout.wait": Gap(
        "has no effect on Azure: the new deployment keeps canary_percent of the traffic and the previous one the "
        "rest until the next `up` that changes it; nothing promotes the canary after the wait",
        hint="promote with rollout mode: all-at-once (the previous deployment is then deleted), or let the next "
        "release replace the older of the two",
        severity="warning",
    ),
    "models[].serving.rollout.rollback_on_alarms": Gap(
        "Azure ML has no automatic rollback: the endpoint's alarms notify but do not move traffic back",
        hint="roll back by deploying the previous image again; during a canary, set the traffic back with "
        "`az ml online-endpoint update --traffic`; or set rollback_on_alarms: false",
        severity="warning",
    ),
    "models[].serving.autoscaling.cooldown below 60s": Gap(
        f"Azure Monitor autoscale waits at least {MIN_COOLDOWN_SECONDS} seconds between scale actions",
        hint=f"use {MIN_COOLDOWN_SECONDS}s or more",
        severity="warning",
    ),
    "models[].serving.model_uri outside Azure storage": Gap(
        "Azure ML reads model files from Azure storage only (https://, azureml://, wasbs:// or abfss:// URIs)",
        hint="copy the model into the stack's artifact bucket under models/<model>/ and point model_uri there, "
        "or drop model_uri to serve the training output",
    ),
    "models[].serving.mode.serverless": Gap(
        "Azure ML's serverless deployments (serverless API endpoints) serve only models from the Azure AI model "
        "catalog, billed per token; a custom container has no serverless option and runs on managed online "
        "endpoints with at least one instance (learn.microsoft.com/azure/machine-learning/concept-endpoints, "
        "read 2026-12-06)",
        hint="use mode: realtime (min_replicas: 1), or batch: for scoring that can wait",
    ),
    "models[].serving.mode.async": Gap(
        "Azure ML has no asynchronous online inference: managed online endpoints answer within the request, "
        "and queued, long-running scoring is what batch endpoints do "
        "(learn.microsoft.com/azure/machine-learning/concept-endpoints, read 2026-12-06)",
        hint="use mode: realtime, or models[].batch for long-running scoring into a bucket",
    ),
    # --- batch ------------------------------------------------------------------------------------
    "models[].batch.on_new_data": Gap(
        "Azure ML schedules have cron and recurrence triggers only, and mlops-infra builds no event trigger for "
        "batch scoring on Azure: what Azure offers is an Event Grid subscription on the storage account delivering "
        "to a Logic App that invokes the batch endpoint, and the stack's storage account has one Event Grid system "
        "topic, which the retraining stage owns",
        hint="use schedule: (e.g. '0 * * * *' to score new files every hour), or retraining.on_new_data for training",
    ),
    "models[].batch.schedule by day of month or month": Gap(
        "batch runs start from a Logic Apps Recurrence trigger, which runs every day or on days of the week, at "
        "given hours and minutes, and has no day-of-month or month field",
        hint="restrict only hours, minutes and days of the week (e.g. '0 5 * * 1-5')",
    ),
    "models[].batch.schedule on a private network": Gap(
        "with governance.network: private the batch endpoint is reached only through the workspace's private "
        "endpoint, and the Logic App (Consumption) that starts scheduled runs runs outside the stack's network",
        hint="invoke the endpoint from inside the network (az ml batch-endpoint invoke), or use network: public",
    ),
    "models[].batch.model_uri outside Azure storage": Gap(
        "Azure ML reads model files from Azure storage only (https://, azureml://, wasbs:// or abfss:// URIs)",
        hint="copy the model into the stack's artifact bucket under models/<model>/ and point model_uri there, "
        "or drop model_uri to score with the training output",
    ),
    "models[].batch MLflow models": Gap(
        "Azure ML batch deployments without a scoring script run MLflow models only: the training output under "
        "models/<model>/ (or model_uri) must be an MLflow model directory (MLmodel file), registered as mlflow_model",
        hint="log the model with mlflow.<flavor>.save_model in the training container",
        severity="warning",
    ),
    "models[].batch.max_runtime": Gap(
        "Azure batch deployments have no limit on a whole run: max_runtime bounds each mini-batch call "
        "(retry_settings.timeout), retried up to 3 times",
        hint="keep it for the other clouds; watch long runs in Azure ML studio",
        severity="warning",
    ),
    # --- monitoring -------------------------------------------------------------------------------
    "models[].monitoring.drift to notify.webhook": Gap(
        "Azure ML model monitors notify by email only: drift on this model reaches monitoring.notify.emails but "
        "not the webhook (on_drift adds an Azure Monitor alert that does)",
        hint="set retraining.on_drift: true on the model, or watch the monitor in Azure ML studio",
        severity="warning",
    ),
    # --- features ---------------------------------------------------------------------------------
    # azure-native's Blob needs shared keys: github.com/pulumi/pulumi-azure-native/issues/2015 (open,
    # read 2026-12-06); the offline store types: reference-yaml-feature-store (azure_data_lake_gen2 only).
    "feature_store.groups[] feature set versions": Gap(
        "Azure ML registers a feature set version from a FeaturesetSpec.yaml folder in storage, which mlops-infra "
        "cannot write (azure-native writes blobs with shared keys, which the stack's storage account refuses): "
        "mlops-infra creates the group's entity and feature set, and its versions are registered from your repository",
        hint="register versions with `az ml feature-set create --feature-store-name <store>` (the plan's feature "
        "store) from a FeaturesetSpec.yaml with the group's features, index column and timestamp column",
        severity="warning",
    ),
    "feature_store.groups[].online": Gap(
        "Azure ML's online store is an Azure Managed Redis that mlops-infra does not create yet: the group is "
        "served from its offline source only",
        hint="attach an online store to the feature store yourself, or set online: false",
        severity="warning",
    ),
    # --- data_prep --------------------------------------------------------------------------------
    "models[].data_prep.on_new_data": Gap(
        "Azure ML schedules cannot be triggered by events (a cron or a recurrence only), and mlops-infra starts "
        "Azure ML jobs on new blobs only for retraining (its Logic App and Event Grid subscription), not yet for "
        "data preparation",
        hint="give data_prep a schedule instead, e.g. an hour before retraining",
    ),
    "models[].data_prep failures to notify.webhook": Gap(
        "Azure ML job notifications are emails (or Azure DevOps webhooks): a failed preparation run mails "
        "monitoring.notify.emails, and the webhook is not told",
        hint="watch failed runs in Azure ML studio, or rely on the emails",
        severity="warning",
    ),
    # --- explainability ---------------------------------------------------------------------------
    # Signal types of Azure ML model monitors in the stable API: DataDrift, PredictionDrift,
    # DataQuality, FeatureAttributionDrift, Custom (MonitoringSignalType, learn.microsoft.com/
    # javascript/api/@azure/arm-machinelearning/monitoringsignaltype; pulumi-azure-native 3.29, API
    # 2025-12-01). ModelPerformance is experimental in azure-ai-ml (learn.microsoft.com/python/api/
    # azure-ai-ml/azure.ai.ml.entities.modelperformancesignal) and prerelease in the ARM SDKs. Read 2026-12-06.
    "models[].monitoring.bias": Gap(
        "is not monitored on Azure: Azure ML model monitors have no bias signal (their signals are data drift, "
        "prediction drift, data quality, feature attribution drift and custom components); its label names the "
        "target column of the feature attribution signal",
        hint="compute bias metrics in the evaluation step or a custom job, or keep bias for the other clouds",
        severity="warning",
    ),
    "models[].monitoring.model_quality": Gap(
        "is not monitored on Azure: Azure ML's model performance signal exists only in its preview API versions "
        "(experimental in azure-ai-ml), not in the stable API (2025-12-01) that mlops-infra declares monitors with",
        hint="join ground truth to the captured responses in a scheduled job of your own, or keep model_quality "
        "for the other clouds",
        severity="warning",
    ),
    "models[].monitoring.explainability to notify.webhook": Gap(
        "Azure ML model monitors notify by email only: attribution drift on this model reaches "
        "monitoring.notify.emails but not the webhook",
        hint="watch the monitor in Azure ML studio, or rely on the emails",
        severity="warning",
    ),
    # --- retraining -------------------------------------------------------------------------------
    "models[].retraining.schedule with both day fields": Gap(
        "Azure ML schedules (NCronTab) run on the days that match both day-of-month and day-of-week, where cron "
        "runs on the days that match either, so Azure would run it on fewer days",
        hint="restrict only one of day-of-month and day-of-week (e.g. '0 3 1 * *' or '0 3 * * 1')",
    ),
}
