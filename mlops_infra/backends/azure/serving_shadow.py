"""Azure shadow tests: a challenger deployment that receives a mirrored copy of live traffic.

serving.shadow becomes a second managed online deployment on the model's endpoint, running the
challenger (shadow.image, default the serving image; shadow.model_uri, default the served
model's artifact) on the serving instance type, with no live traffic: the endpoint's
mirrorTraffic sends it traffic_percent of the requests (EndpointTraffic, traffic.py), Azure
discards its answers, and its data collector keeps every mirrored request and response under
data-capture/<model>/shadow/ in the artifact bucket (responses captured, never returned).

Facts (Azure ML REST API, OnlineEndpointProperties.mirrorTraffic, 2025-12-01, read 2026-12-06):
mirrorTraffic is "percentage of traffic to be mirrored to each deployment without using returned
scoring"; its values "need to sum to utmost 50". Azure mirrors only to a deployment with no live
traffic (learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints), which
the challenger always is here. The challenger's model version lives in a model container of its
own (<model>_shadow): a challenger is not a version of the registry's model.

The challenger's name is a hash of what it runs (like the served deployment): a new challenger
is created next to the old one, the mirror moves to it, then Pulumi deletes the old one. It is
not autoscaled: it runs enough instances for its share of the model's minimum replicas.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.common import after
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import Model
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

SHADOW = "shadow"
MAX_MIRROR_PERCENT = 50  # mirrorTraffic values sum to at most 50 (REST API)


def challenger(model: Model) -> Model:
    """The model as its challenger serves it: the shadow's image and artifact where it names them."""
    serving = model.serving
    assert serving is not None and serving.shadow is not None
    shadow = serving.shadow
    return model.model_copy(
        update={
            "serving": serving.model_copy(
                update={"image": shadow.image or serving.image, "model_uri": shadow.model_uri or serving.model_uri}
            )
        }
    )


def shadow_problems(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    """A mirror above Azure's 50 %, and a challenger artifact the serving identity cannot read."""
    from mlops_infra.backends.azure import BACKEND
    from mlops_infra.backends.azure.serving import model_uri_problems

    namer = BACKEND.namer(spec, settings)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        if model.serving is None or model.serving.shadow is None:
            continue
        base = ("models", i, "serving", "shadow")
        percent = model.serving.shadow.traffic_percent
        if percent > MAX_MIRROR_PERCENT:
            problems.append(
                finding(
                    (*base, "traffic_percent"),
                    f"Azure ML mirrors at most {MAX_MIRROR_PERCENT} % of an endpoint's traffic to shadow deployments",
                    hint=f"use traffic_percent: {MAX_MIRROR_PERCENT} or less",
                    value=percent,
                )
            )
        if model.serving.shadow.model_uri:
            problems += model_uri_problems(challenger(model), base, namer)
    return problems


def shadow_deployment(
    ctx: StageContext, model: Model, workspace: Any, endpoint: Any, instance_type: str, waits: list[Any]
) -> Any:
    """The challenger's deployment on `endpoint` (its name, once it exists)."""
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.serving import (
        _capture,
        _environment,
        _model_version,
        deployment_properties,
    )

    serving = model.serving
    assert serving is not None and serving.shadow is not None
    rival = challenger(model)
    public = ctx.spec.governance.network != "private"
    environment, environment_key = _environment(ctx, rival, workspace, role=SHADOW)
    model_version, model_key = _model_version(ctx, rival, workspace, environment_key, role=SHADOW)
    collectors = _capture(ctx, rival, workspace, {}, role=SHADOW)
    variables = dict(sorted(serving.environment.items()))
    definition = {
        "model": model_key,
        "environment": environment_key,
        "instance_type": instance_type,
        "variables": variables,
        "egress": "Enabled" if public else "managed-network",
        "role": SHADOW,
    }
    digest = stable_hash(model.name, json.dumps(definition, sort_keys=True), length=8)
    name = ctx.namer.name("azure.ml.online_deployment", model.name, SHADOW, digest)
    capacity = max(1, math.ceil(serving.autoscaling.min_replicas * serving.shadow.traffic_percent / 100))
    deployment = ml.OnlineDeployment(
        ctx.logical("deployment", model.name, SHADOW),
        deployment_name=name,
        endpoint_name=endpoint,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        location=workspace.location,
        sku=ml.SkuArgs(name="Default", capacity=capacity),
        properties=deployment_properties(
            description=f"mlops-infra: shadow of {model.name} on {rival.serving.image if rival.serving else ''}",
            model_version=model_version,
            environment=environment,
            variables=variables,
            instance_type=instance_type,
            collectors=collectors,
            public=public,
        ),
        tags=ctx.tags(),
        opts=ctx.opts(depends_on=waits),
    )
    return after(deployment.tags, name)
