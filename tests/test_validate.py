"""Validation: every problem at once, each with file, line, dotted path and a hint."""

from __future__ import annotations

import textwrap

import pytest

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text

HEAD = """\
apiVersion: mlops-infra/v1
project: churn
environment: dev
cloud: aws
clouds:
  aws: {region: us-east-1, account_id: "123456789012"}
"""


def problems_of(body: str, clouds: list[str] | None = None) -> list:
    with pytest.raises(SpecInvalid) as info:
        check_text(HEAD + textwrap.dedent(body), "spec.yaml", clouds=clouds)
    return info.value.problems


def by_path(problems: list) -> dict[str, object]:
    return {p.dotted_path: p for p in problems}


def test_minimal_spec_is_valid() -> None:
    checked = check_text(HEAD, "spec.yaml")
    assert checked.spec.project == "churn" and checked.clouds == ["aws"]


def test_unknown_key_has_line_and_did_you_mean() -> None:
    problems = problems_of(
        """\
        storage:
          buckets:
            - name: raw
              versionning: true
        """
    )
    problem = by_path(problems)["storage.buckets[0].versionning"]
    assert problem.line == 10 and problem.file == "spec.yaml"
    assert "unknown key" in problem.message and "versioning" in problem.hint


def test_all_structural_problems_are_reported_at_once() -> None:
    problems = problems_of(
        """\
        tags: {owner: ml}
        storage:
          buckets:
            - {name: Raw}
        models:
          - name: m1
            serving:
              image: ghcr.io/acme/serve:1
              compute: {size: cpu-huge}
              autoscaling: {min_replicas: 5, max_replicas: 2}
              data_capture: {sampling_percent: 150}
        """
    )
    paths = set(by_path(problems))
    assert {
        "storage.buckets[0].name",
        "models[0].serving.compute.size",
        "models[0].serving.autoscaling",
        "models[0].serving.data_capture.sampling_percent",
    } <= paths
    assert all(p.line for p in problems)
    sampling = by_path(problems)["models[0].serving.data_capture.sampling_percent"]
    assert sampling.value == 150 and sampling.line == 17


def test_missing_required_key_points_at_parent() -> None:
    problems = problems_of(
        """\
        models:
          - name: m1
            training:
              compute: {size: cpu-small}
        """
    )
    problem = by_path(problems)["models[0].training.image"]
    assert problem.message == "required key is missing" and problem.line == 9


def test_cross_references_are_checked() -> None:
    problems = problems_of(
        """\
        storage:
          buckets: [{name: raw}, {name: raw}]
        models:
          - name: m1
            training:
              image: ghcr.io/acme/t:1
              compute: {size: cpu-small}
              inputs: [rwa]
            monitoring:
              drift: {baseline: raw}
          - name: m1
            retraining: {schedule: "0 3 * * 1", on_drift: true}
        """
    )
    found = by_path(problems)
    assert "duplicate bucket name" in found["storage.buckets[1].name"].message
    assert "did you mean 'raw'" in found["models[0].training.inputs[0]"].hint
    assert "serving" in found["models[0].monitoring.drift"].message
    assert "duplicate model name" in found["models[1].name"].message
    assert "no training block" in found["models[1].retraining"].message
    assert "drift monitoring" in found["models[1].retraining.on_drift"].message
    assert all(p.line for p in problems)


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [("0 3 * *", "5 fields"), ("61 3 * * 1", "outside 0-59"), ("0 3 * * mon-sun", "runs backwards"), ("*/0 * * * *", "step")],
)
def test_invalid_cron(cron: str, fragment: str) -> None:
    problems = problems_of(
        f"""\
        models:
          - name: m1
            training: {{image: "ghcr.io/a/t:1", compute: {{size: cpu-small}}}}
            retraining: {{schedule: "{cron}"}}
        """
    )
    problem = by_path(problems)["models[0].retraining.schedule"]
    assert fragment in problem.message


def test_tags_invalid_on_some_cloud_are_rejected() -> None:
    problems = problems_of("tags: {Owner: ML Team}\n")
    assert any(p.dotted_path == "tags.Owner" and p.hint for p in problems)


def test_missing_cloud_settings_for_target() -> None:
    problems = problems_of("", clouds=["gcp"])
    assert any(p.dotted_path == "clouds" and "clouds.gcp" in p.message for p in problems)


def test_yaml_problems_are_reported_with_lines() -> None:
    with pytest.raises(SpecInvalid) as info:
        check_text("apiVersion: mlops-infra/v1\nproject: a\nproject: b\n", "s.yaml")
    assert info.value.problems[0].line == 3 and "duplicate" in info.value.problems[0].message


def test_non_mapping_root() -> None:
    with pytest.raises(SpecInvalid) as info:
        check_text("- a\n- b\n", "s.yaml")
    assert "must be a mapping" in info.value.problems[0].message


def test_wrong_api_version_hint() -> None:
    with pytest.raises(SpecInvalid) as info:
        check_text(HEAD.replace("mlops-infra/v1", "mlops-infra/v2"), "s.yaml")
    problem = info.value.problems[0]
    assert problem.dotted_path == "apiVersion" and problem.hint == "use apiVersion: mlops-infra/v1"


def test_unsupported_stage_is_a_warning_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_infra.backends import get_backend

    backend = get_backend("aws")
    monkeypatch.setattr(type(backend), "supports", lambda self, stage: stage != "training")
    monkeypatch.setattr(type(backend), "unsupported", {"training": "SageMaker is on holiday in this test"})
    checked = check_text(
        HEAD
        + textwrap.dedent(
            """\
            models:
              - name: m1
                training: {image: "ghcr.io/a/t:1", compute: {size: cpu-small}}
              - name: m2
                training: {image: "ghcr.io/a/t:1", compute: {size: cpu-small}}
            """
        ),
        "s.yaml",
    )
    (warning,) = [w for w in checked.warnings if "does not deploy" in w.message]
    assert warning.severity == "warning" and warning.dotted_path == "models[0].training" and warning.line == 9
    assert warning.message == "AWS does not deploy training yet (and 1 more place): SageMaker is on holiday in this test"


def test_hostile_input_is_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(SpecInvalid) as info:
        check_text(bomb, "bomb.yaml")
    assert "nodes" in info.value.problems[0].message


def test_python_object_tags_are_refused() -> None:
    with pytest.raises(SpecInvalid) as info:
        check_text("apiVersion: !!python/object/apply:os.system ['true']\n", "evil.yaml")
    assert "tag" in info.value.problems[0].message.lower()
