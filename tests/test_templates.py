"""Every template escapes what it prints for the language it is written in (JSON, YAML, SQL,
Markdown), so hostile-but-valid names and free-form values render into documents that parse
back to exactly those values (issue 18)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from mlops_infra import templating
from mlops_infra.templating import UnescapedValue, inline, sql_name, to_json, yaml_scalar
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"

HOSTILE_TEXT = [
    "plain",
    'quote " and \' and ` backtick',
    "back\\slash \\n \\u0000",
    "line\nbreak\tand tab\r",
    "${sys.get_env(\"X\")}",
    "-- comment */ /* # hash: colon",
    "{{ jinja }} {% tag %}",
    "\u00e9\u65e5\u672c \u2028 \u2029 \u0085",
    "null",
    "no",
    "",
]


# --- the filters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_json_and_inline_read_back_as_the_value(text: str) -> None:
    assert json.loads(to_json(text)) == text
    assert json.loads('"' + inline(text) + '"') == text
    assert "\n" not in inline(text) and "\r" not in inline(text) and "\u2028" not in inline(text)
    assert yaml.safe_load("# " + inline(text) + "\nkey: 1\n") == {"key": 1}  # a comment stays one line


@pytest.mark.parametrize(
    "text", [*HOSTILE_TEXT, "yes", "on", "off", "True", "NULL", "~", "1e3", "0x10", "12:30", "a: b", "a:", "-x",
             "@x", "ghcr.io/acme/train:1.4.0", "churn-dev"],
)
def test_yaml_scalars_read_back_as_the_string(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_scalar(text)}\n") == {"key": text}


def test_yaml_scalars_stay_plain_when_that_is_safe() -> None:
    assert yaml_scalar("churn") == "churn" and yaml_scalar("ghcr.io/acme/x:0.1.0") == "ghcr.io/acme/x:0.1.0"
    assert yaml_scalar("no") == '"no"' and yaml_scalar("a b") == '"a b"'


@pytest.mark.parametrize("text", [t for t in HOSTILE_TEXT if t])
def test_sql_names_cannot_end_their_quotes(text: str) -> None:
    quoted = "`" + sql_name(text) + "`"
    assert unquote_sql_name(quoted) == text
    assert "\n" not in quoted and "\r" not in quoted


def unquote_sql_name(quoted: str) -> str:
    """The identifier inside a GoogleSQL backtick-quoted name (its string-literal escapes undone)."""
    assert quoted[0] == "`" and quoted[-1] == "`"
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        char = body[i]
        assert char != "`", f"an unescaped backtick ends the name early: {quoted!r}"
        if char == "\\":
            escaped = body[i + 1]
            if escaped == "u":
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(escaped)
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def test_printing_without_an_escaping_filter_is_refused() -> None:
    environment = templating._environment()
    for source, value in [("{{ x }}", "text"), ("{{ x }}", None), ("{{ x }}", True), ("{{ x }}", {"a": 1})]:
        with pytest.raises(UnescapedValue):
            environment.from_string(source).render(x=value)
    assert environment.from_string("{{ x }}/{{ y | json }}{{ 'z' if false }}").render(x=3, y="a") == '3/"a"'


# --- every template, through the code that renders it -------------------------------------------------
@pytest.fixture()
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """(template, output) of every rendering while the test runs."""
    seen: list[tuple[str, str]] = []
    real = templating._environment()

    class Recording:
        def get_template(self, name: str) -> Any:
            template = real.get_template(name)

            class Recorded:
                def render(self, **values: Any) -> str:
                    output = template.render(**values)
                    seen.append((name, output))
                    return output

            return Recorded()

    monkeypatch.setattr(templating, "_environment", lambda: Recording())
    yield seen


ENVIRONMENT = {
    "QUOTES": 'say "hi" and \'bye\' `now`',
    "BACKSLASH": "C:\\path\\n\\u0041",
    "EXPRESSION": '${sys.get_env("GOOGLE_CLOUD_PROJECT_ID")}',
    "SQL": "x'; DROP TABLE t; -- */",
    "MULTILINE": "line one\nline two\tindented\n",
    "UNICODE": "caf\u00e9 \u65e5\u672c",
    "EMPTY": "",
}


def hostile_spec() -> dict[str, Any]:
    """Valid on every cloud, with names that are words in YAML, JSON and SQL, and free-form values."""
    spec = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    spec["project"], spec["environment"] = "null", "no"
    spec["tags"] = {"owner": "true", "team": "", "select": "drop-table"}
    first, second = spec["models"][0], spec["models"][1]
    renamed = {first["name"]: "select", second["name"]: "yes"}
    first["name"], second["name"] = "select", "yes"
    # Batch scoring renders its own templates (the example may already score in batch).
    first.setdefault("batch", {"input": {"bucket": "raw", "prefix": "to-score/"}, "output": {"bucket": "labels", "prefix": "scores/"},
                               "schedule": "0 5 * * *", "compute": {"size": "cpu-small"}})
    for model in (first, second):
        model["training"]["environment"] = dict(ENVIRONMENT)
        model["training"]["hyperparameters"] = {"query": "a'; --", "json": '{"k": [1]}', "n": 3}
        if "serving" in model:
            model["serving"]["environment"] = dict(ENVIRONMENT)
    bucket = spec["storage"]["buckets"][0]["name"]
    first.setdefault("data_prep", {
        "image": "ghcr.io/acme/prep:1.0", "compute": {"size": "cpu-small"}, "schedule": "0 1 * * 0",
        "inputs": [{"bucket": bucket, "prefix": "prep-in/"}], "output": {"bucket": bucket, "prefix": "prep-out/"},
    })
    # The data preparation job's environment takes no line breaks (a neutral check).
    first["data_prep"]["environment"] = {k: v for k, v in ENVIRONMENT.items() if "\n" not in v}
    for settings in spec["clouds"].values():
        overrides = settings.get("overrides", {}).get("models", {})
        for old, new in renamed.items():
            if old in overrides:
                overrides[new] = overrides.pop(old)
    return spec


def plan_recording(cloud: str) -> None:
    from mlops_infra.plan import plan_document
    from mlops_infra.spec.validate import check_text

    checked = check_text(yaml.safe_dump(hostile_spec()), "hostile.yaml", clouds=[cloud])
    plan_document(checked.spec, cloud, stack="dev")


def parse(name: str, output: str) -> Any:
    if name.endswith(".json.j2"):
        return json.loads(output)
    if name.endswith((".yaml.j2", ".yml.j2")):
        return yaml.safe_load(output)
    return output


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                yield from strings_in(json.loads(value))
            except ValueError:
                pass
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from strings_in(key)
            yield from strings_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from strings_in(child)


def planning_templates(cloud: str) -> list[str]:
    """The cloud's templates that planning renders (its CI login step is rendered by `init`)."""
    return sorted(p.name for p in (TEMPLATES / cloud).glob("*.j2") if p.name != "ci-login.yml.j2")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_templates_a_cloud_renders_parse_with_hostile_values(cloud: str, rendered: list) -> None:
    plan_recording(cloud)
    if not planning_templates(cloud):
        # A backend without templates builds its documents as data: the hostile values still plan.
        assert not rendered, rendered
        return
    assert rendered, "nothing was rendered"
    for name, output in rendered:
        document = parse(name, output)
        if name == "azure/command_component.json.j2":
            assert document["environment_variables"] == ENVIRONMENT
        if name in ("gcp/workflow.yaml.j2", "gcp/data_prep.yaml.j2"):
            env = document["main"]["steps"][0]["init"]["assign"]
            body = next(item["job_body"] for item in env if "job_body" in item)
            values = {e["name"]: e["value"] for e in body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
            # Workflows reads "${...}" as an expression: the backend writes such a value as the
            # expression of its own literal, which the template must carry intact.
            assert values["EXPRESSION"] == "${" + json.dumps(ENVIRONMENT["EXPRESSION"]) + "}"
            assert values["QUOTES"] == ENVIRONMENT["QUOTES"]
            assert values.get("MULTILINE", ENVIRONMENT["MULTILINE"]) == ENVIRONMENT["MULTILINE"]
        if name == "gcp/drift.yaml.j2":
            query = next(i["query"] for i in document["main"]["steps"][0]["init"]["assign"] if "query" in i)
            assert query == next(out for n, out in rendered if n == "gcp/drift.sql.j2" and out in query)


def test_the_templates_parse_with_any_string_in_any_value(rendered: list) -> None:
    from mlops_infra.backends.aws import monitoring_alarms as alarms
    from mlops_infra.backends.aws import training_jobs as jobs
    from mlops_infra.backends.gcp.monitoring import dashboard_json

    text = HOSTILE_TEXT[1] + HOSTILE_TEXT[3] + HOSTILE_TEXT[4]
    values = jobs.JobValues(
        job_name=text, image=text, role_arn=text, key_arn=text, instance_type="ml.m5.large", instance_count=1,
        volume_encrypted=True, max_runtime=3600, max_wait=7200, channels=((text, text),), output_uri=text,
        checkpoint_uri=text, hyperparameters=((text, text),), environment=tuple(ENVIRONMENT.items()),
        tags=((text, text),),
    )
    pipeline = jobs.pipeline_definition(values, jobs.Registration(group=text, approval="manual", image=text, environment=dict(ENVIRONMENT), instance_types=("ml.m5.large",)))
    assert dict(pipeline["Steps"][0]["Arguments"]["Environment"]) == ENVIRONMENT
    assert pipeline["Steps"][0]["Arguments"]["HyperParameters"] == {text: text}
    from mlops_infra.backends.aws import batch_jobs

    scoring = batch_jobs.pipeline_definition(batch_jobs.TransformValues(
        job_name=text, model_name=text, input_uri=text, output_uri=text, key_arn=text, instance_type="ml.m5.large",
        instance_count=2, volume_encrypted=True, tags=((text, text),)))
    assert scoring["Steps"][0]["Arguments"]["ModelName"] == text and scoring["Steps"][0]["Arguments"]["Tags"] == [
        {"Key": text, "Value": text}]
    dashboard = json.loads(dashboard_json(display_name=text, labels={text: text}, endpoint_ids={"yes": text}))
    assert dashboard["displayName"] == text and dashboard["labels"] == {text: text}
    body = alarms.dashboard_body(
        region=text, title=text, variant=text,
        rows=[alarms.Row(model="null", endpoint=text, latency_ms=None, error_percent=None)],
    )
    assert body["widgets"][0]["properties"]["markdown"].startswith("# " + text)
    workflow = templating.render_json("azure/retrain_workflow.json.j2", model=text, arm=text, api_version=text)
    assert workflow["parameters"]["job"]["metadata"]["description"].endswith(f"that trains {text}")
    batch = templating.render_json("azure/batch_workflow.json.j2", model=text, recurrence={"timeZone": text}, audience=text)
    assert batch["parameters"]["deployment"]["metadata"]["description"].endswith(f"that scores {text}")
    assert batch["triggers"]["schedule"]["recurrence"] == {"timeZone": text}
    query = templating.render(
        "gcp/drift.sql.j2", model=text, captured="p.d`; DROP TABLE t; --.captured", baseline="p.d.base\\`line",
        window_hours=24,
    )
    template_lines = (TEMPLATES / "gcp" / "drift.sql.j2").read_text().count("\n")
    assert query.count("\n") == template_lines  # nothing broke a comment or a line
    names = re.findall(r"FROM (`(?:[^`\\]|\\.)*`)", query)
    assert [unquote_sql_name(n) for n in names] == ["p.d.base\\`line", "p.d`; DROP TABLE t; --.captured"]


def test_every_template_is_covered_by_these_tests(rendered: list) -> None:
    for cloud in CLOUDS:
        plan_recording(cloud)
    test_the_templates_parse_with_any_string_in_any_value(rendered)
    scaffold("no", "gcp", Path("/nonexistent"), write=False)
    every = {str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.j2")}
    included = {f"{cloud}/ci-login.yml.j2" for cloud in CLOUDS}  # by the CI workflow
    assert every - included - {name for name, _ in rendered} == set()


# --- the scaffold ---------------------------------------------------------------------------------------
def scaffold(project: str, cloud: str, directory: Path, *, write: bool = True) -> dict[str, str]:
    from mlops_infra import scaffold as scaffolding

    if write:
        scaffolding.init_project(directory=directory, cloud=cloud, project=project)
        return {name: (directory / name).read_text() for name in scaffolding.FILES.values()}
    values = {"project": project, "cloud": cloud, "gcp_project": f"{project}-mlops", "model": f"{project}-model",
              "training_image": f"ghcr.io/acme/{project}-train:0.1.0", "version": "0.1.0",
              "install_requirement": f"mlops-infra[{cloud}] @ git+https://example.com/o'r/mlops-infra@v1",
              "install_origin": "a \"hostile\" origin # not a comment"}
    return {template: templating.render(f"init/{template}", **values) for template in scaffolding.FILES}


@pytest.mark.parametrize("project", ["no", "null", "true", "on", "yes", "select", "e10", "a-b-c-d", "x" * 24])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_scaffold_for_any_valid_project_name_reads_back(project: str, cloud: str, tmp_path: Path) -> None:
    files = scaffold(project, cloud, tmp_path)
    spec = yaml.safe_load(files["stacks/dev.yaml"])  # YAML 1.1, the strictest reader of the two
    assert spec["project"] == project and spec["cloud"] == cloud
    assert spec["clouds"]["gcp"]["project"] == f"{project}-mlops"
    assert spec["models"][0]["name"] == f"{project}-model"
    pulumi_project = yaml.safe_load(files["Pulumi.yaml"])
    assert pulumi_project["name"] == project and project in pulumi_project["description"]
    workflow = yaml.safe_load(files[".github/workflows/mlops-infra.yml"])
    assert workflow["env"]["CLOUD"] == cloud
    assert files["README.md"].startswith(f"# {project}: MLOps platform\n")


def test_a_scaffolded_spec_with_a_word_for_a_name_validates(tmp_path: Path) -> None:
    from mlops_infra.spec.validate import check_file

    scaffold("null", "aws", tmp_path)
    checked = check_file(tmp_path / "stacks" / "dev.yaml")
    assert checked.spec.project == "null"
