"""The Azure evaluation gate: with training.evaluation, every retraining run is a pipeline job that
registers the new model version only when it passes.

Per evaluated model (beside its training component, training.py), three command components:
- evaluate: the evaluation image (training.evaluation.image, default the training image) running
  `evaluate` (or training.evaluation.command) with `--model-dir DIR --metrics-dir DIR --<input> DIR`
  (the training inputs); it writes metrics.json ({"<metric>": value}) into --metrics-dir;
- gate: GATE_SCRIPT in Azure ML's curated Python environment: it reads the metric, compares it
  with the threshold in the spec's direction and, with compare_to_approved, with the metric of the
  last version that passed (metrics.json under evaluation/<model>/approved/ of the artifact bucket,
  which it rewrites when the new version passes). A version that fails exits non-zero;
- register: copies the trained model to a custom_model output named after the model: Azure ML
  registers it as a new version of the model's container (registry.py) when the node completes.

The pipeline job: train -> evaluate -> gate -> register, each node bound to the next by its
outputs, with continue_on_step_failure off. A failed gate fails the pipeline, so register never
runs, and the job's notification settings mail monitoring.notify.emails (Azure ML job
notifications are emails: the webhook is not told, a gap warned at validate). Azure ML's if_else
control-flow node would express the same branch, but it is a preview feature of pipelines; a
failing step is the generally available condition.

Every retraining trigger (the Azure ML schedule and the Logic App of new-data and drift events,
retraining.py) submits this pipeline job instead of the bare training job. The one-off
run_on_deploy job stays a training job: it registers nothing.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.governance_access import evaluation_prefix
from mlops_infra.backends.azure.training import MODEL_OUTPUT, VERSION_LENGTH, asset_name, command_job_args, command_job_body
from mlops_infra.naming import stable_hash

if TYPE_CHECKING:
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.training import TrainingJob
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import Model

EVALUATE_COMMAND = "evaluate"
METRICS_FILE = "metrics.json"
# Azure ML's curated Python environment (azureml registry) runs the gate and the registration copy.
# Source: Azure ML curated environments (sklearn-1.5), referenced by label as Microsoft's examples do.
PYTHON_ENVIRONMENT = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
FAILED = "JobFailed"

# The gate, run as `python -c GATE_SCRIPT --metrics DIR --approved DIR --metric M --threshold T
# --direction maximize|minimize [--compare-to-approved]`. tests/test_evaluation_azure.py runs it.
GATE_SCRIPT = """\
import argparse, json, os, sys
p = argparse.ArgumentParser()
for flag in ('--metrics', '--approved', '--metric', '--direction'):
    p.add_argument(flag, required=True)
p.add_argument('--threshold', type=float, required=True)
p.add_argument('--compare-to-approved', action='store_true')
a = p.parse_args()
new = float(json.load(open(os.path.join(a.metrics, 'metrics.json')))[a.metric])
bars = [('the threshold', a.threshold)]
kept = os.path.join(a.approved, 'metrics.json')
if a.compare_to_approved and os.path.exists(kept):
    bars.append(('the approved version', float(json.load(open(kept))[a.metric])))
short = [f'{what} ({bar})' for what, bar in bars if (new < bar if a.direction == 'maximize' else new > bar)]
if short:
    sys.exit(f'evaluation gate failed: {a.metric} {new} does not reach ' + ' nor '.join(short))
json.dump({a.metric: new}, open(kept, 'w'))
print(f'evaluation gate passed: {a.metric} {new}')
"""
REGISTER_COMMAND = "cp -r ${{inputs.model}}/. ${{outputs.registered}}"


@dataclass(frozen=True)
class EvaluationGate:
    """One evaluated model's three component versions and where the gate keeps the approved metrics."""

    evaluate_id: Any
    gate_id: Any
    register_id: Any
    metrics_uri: Any  # azureml:// folder of the evaluation's metrics, per pipeline run
    approved_uri: Any  # azureml:// folder of the last passing metrics
    emails: tuple[str, ...]


def approved_prefix(model: str) -> str:
    return f"{evaluation_prefix(model)}approved/"


def metrics_prefix(model: str) -> str:
    return f"{evaluation_prefix(model)}runs/"


def evaluate_command(model: Model, inputs: list[str]) -> str:
    evaluation = model.training.evaluation if model.training else None
    assert evaluation is not None
    base = [shlex.quote(part) for part in evaluation.command] or [EVALUATE_COMMAND]
    parts = [*base, "--model-dir", "${{inputs.model}}", "--metrics-dir", "${{outputs.metrics}}"]
    for name in sorted(inputs):
        parts += [f"--{name}", f"${{{{inputs.{name}}}}}"]
    return " ".join(parts)


def gate_command(model: Model) -> str:
    evaluation = model.training.evaluation if model.training else None
    assert evaluation is not None
    parts = [
        "python", "-c", shlex.quote(GATE_SCRIPT),
        "--metrics", "${{inputs.metrics}}", "--approved", "${{outputs.approved}}",
        "--metric", shlex.quote(evaluation.metric), "--threshold", repr(float(evaluation.threshold)),
        "--direction", evaluation.direction,
    ]
    if evaluation.compare_to_approved:
        parts.append("--compare-to-approved")
    return " ".join(parts)


def _component(name: str, description: str, command: str, environment: str, inputs: dict[str, str],
               outputs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A command component spec (the schema the training component follows); versioned by its content."""
    spec: dict[str, Any] = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
        "type": "command",
        "name": name,
        "display_name": description,
        "description": f"mlops-infra: {description}",
        "is_deterministic": False,
        "command": command,
        "environment": environment,
        "inputs": {key: {"type": "uri_folder", "mode": "ro_mount", "description": text} for key, text in sorted(inputs.items())},
        "outputs": dict(sorted(outputs.items())),
    }
    spec["version"] = stable_hash(json.dumps(spec, sort_keys=True), length=VERSION_LENGTH)
    return spec


def component_specs(model: Model, *, environment: str, inputs: list[str]) -> dict[str, dict[str, Any]]:
    """The evaluate, gate and register component specs of an evaluated model."""
    data = {name: f"training input {name}" for name in inputs}
    return {
        "evaluate": _component(
            asset_name(model.name, "evaluate"), f"{model.name} evaluation", evaluate_command(model, inputs),
            environment, {"model": "the trained model", **data},
            {"metrics": {"type": "uri_folder", "mode": "upload", "description": f"{METRICS_FILE}: the metrics"}},
        ),
        "gate": _component(
            asset_name(model.name, "gate"), f"{model.name} evaluation gate", gate_command(model), PYTHON_ENVIRONMENT,
            {"metrics": "the evaluation's metrics"},
            {"approved": {"type": "uri_folder", "mode": "rw_mount", "description": "metrics of the last passing version"}},
        ),
        "register": _component(
            asset_name(model.name, "register"), f"{model.name} registration", REGISTER_COMMAND, PYTHON_ENVIRONMENT,
            {"model": "the trained model", "approved": "the gate's verdict (runs only after it passed)"},
            {"registered": {"type": "custom_model", "mode": "upload", "description": f"a new version of {model.name}"}},
        ),
    }


def build_gate(ctx: StageContext, model: Model, *, workspace: Any, environment: str, inputs: list[str],
               depends_on: list[Any]) -> EvaluationGate:
    """Declare the three components of `model`'s gate (its evaluation environment is `environment`)."""
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    ids: dict[str, Any] = {}
    for step, spec in component_specs(model, environment=environment, inputs=inputs).items():
        container = ml.ComponentContainer(
            ctx.logical("component", model.name, step),
            name=spec["name"],
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.ComponentContainerPropertiesArgs(description=spec["description"], tags=ctx.tags()),
            opts=ctx.opts(),
        )
        version = ml.ComponentVersion(
            ctx.logical("compversion", model.name, step),
            name=container.name.apply(lambda _, name=spec["name"]: name),
            version=spec["version"],
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.ComponentVersionPropertiesArgs(
                component_spec=spec, description=spec["description"], tags=ctx.tags()
            ),
            opts=ctx.opts(retain_on_delete=True, depends_on=depends_on),
        )
        ids[step] = version.id
    datastore = workspace.artifacts_datastore
    return EvaluationGate(
        evaluate_id=ids["evaluate"],
        gate_id=ids["gate"],
        register_id=ids["register"],
        metrics_uri=pulumi.Output.concat(
            "azureml://datastores/", datastore, "/paths/", metrics_prefix(model.name), "${{name}}/"
        ),
        approved_uri=pulumi.Output.concat("azureml://datastores/", datastore, "/paths/", approved_prefix(model.name)),
        emails=tuple(sorted(set(ctx.spec.monitoring.notify.emails))),
    )


def pipeline_nodes(job: TrainingJob, gate: EvaluationGate) -> dict[str, Any]:
    """The pipeline's nodes (REST form: Azure ML's PipelineJob.jobs is free-form)."""
    identity = {"identity_type": "Managed", "resource_id": job.identity_id}
    data = {
        key: {"job_input_type": "uri_folder", "uri": uri, "mode": "ReadOnlyMount"} for key, uri in job.inputs.items()
    }

    def bound(expression: str) -> dict[str, str]:
        return {"job_input_type": "literal", "value": expression}

    model_uri, model_mode = job.outputs[MODEL_OUTPUT]
    train_outputs = {
        key: {"job_output_type": "uri_folder", "uri": uri, "mode": mode} for key, (uri, mode) in job.outputs.items()
    }
    return {
        "train": {
            "type": "command", "componentId": job.component_id, "computeId": job.compute_id, "identity": identity,
            "inputs": data, "outputs": train_outputs,
            "environment_variables": job.environment_variables,
            "limits": {"job_limits_type": "Command", "timeout": f"PT{job.timeout_seconds}S"},
            "resources": {"instance_count": job.instance_count},
        },
        "evaluate": {
            "type": "command", "componentId": gate.evaluate_id, "computeId": job.compute_id, "identity": identity,
            "inputs": {"model": bound("${{parent.jobs.train.outputs.model}}"), **data},
            "outputs": {"metrics": {"job_output_type": "uri_folder", "uri": gate.metrics_uri, "mode": "Upload"}},
        },
        "gate": {
            "type": "command", "componentId": gate.gate_id, "computeId": job.compute_id, "identity": identity,
            "inputs": {"metrics": bound("${{parent.jobs.evaluate.outputs.metrics}}")},
            "outputs": {"approved": {"job_output_type": "uri_folder", "uri": gate.approved_uri, "mode": "ReadWriteMount"}},
        },
        "register": {
            "type": "command", "componentId": gate.register_id, "computeId": job.compute_id, "identity": identity,
            "inputs": {
                "model": bound("${{parent.jobs.train.outputs.model}}"),
                "approved": bound("${{parent.jobs.gate.outputs.approved}}"),
            },
            "outputs": {"registered": {"job_output_type": "custom_model", "mode": "Upload", "asset_name": job.model}},
        },
    }


def pipeline_job_args(job: TrainingJob, gate: EvaluationGate, *, display_name: str, description: str,
                      tags: dict[str, str]) -> ml.PipelineJobArgs:
    from pulumi_azure_native import machinelearningservices as ml

    return ml.PipelineJobArgs(
        job_type="Pipeline",
        display_name=display_name,
        description=description,
        experiment_name=job.model,
        jobs=pipeline_nodes(job, gate),
        settings={"continue_on_step_failure": False, "default_compute": job.compute_id},
        notification_setting=ml.NotificationSettingArgs(email_on=[FAILED], emails=list(gate.emails)) if gate.emails else None,
        properties={"mlops-infra/component": job.component, "mlops-infra/gate": "evaluation"},
        tags=tags,
    )


def pipeline_job_body(job: TrainingJob, gate: EvaluationGate, *, display_name: str, description: str,
                      tags: dict[str, str]) -> dict[str, Any]:
    """The same pipeline job as the body of an ARM `PUT .../jobs/{name}` (a Logic App sends it)."""
    properties: dict[str, Any] = {
        "jobType": "Pipeline",
        "displayName": display_name,
        "description": description,
        "experimentName": job.model,
        "jobs": pipeline_nodes(job, gate),
        "settings": {"continue_on_step_failure": False, "default_compute": job.compute_id},
        "properties": {"mlops-infra/component": job.component, "mlops-infra/gate": "evaluation"},
        "tags": tags,
    }
    if gate.emails:
        properties["notificationSetting"] = {"emailOn": [FAILED], "emails": list(gate.emails)}
    return {"properties": properties}


def run_args(job: TrainingJob, *, display_name: str, description: str, tags: dict[str, str]) -> Any:
    """What a retraining schedule runs: the gated pipeline when the model has one, else the training job."""
    if job.gate is None:
        return command_job_args(job, display_name=display_name, description=description, tags=tags)
    return pipeline_job_args(job, job.gate, display_name=display_name, description=description, tags=tags)


def run_body(job: TrainingJob, *, display_name: str, description: str, tags: dict[str, str]) -> dict[str, Any]:
    """What a retraining Logic App submits: the gated pipeline when the model has one, else the training job."""
    if job.gate is None:
        return command_job_body(job, display_name=display_name, description=description, tags=tags)
    return pipeline_job_body(job, job.gate, display_name=display_name, description=description, tags=tags)
