"""Retraining triggers as pure data: schedule expressions, event patterns, the automation grant.

No SDK here: the retraining stage turns these into EventBridge Scheduler schedules and
EventBridge rules, retraining.check reports what cannot be translated, and the tests read them.
Facts, with their sources:

- EventBridge Scheduler cron (Scheduler user guide, "Schedule types", cron-based schedules):
  cron(minutes hours day-of-month month day-of-week year); day-of-week runs 1-7 = SUN-SAT;
  exactly one of day-of-month and day-of-week is "?" (the one not used): a schedule cannot
  ask for "the 1st of the month OR Mondays", which Vixie cron (the neutral spec's semantics)
  means when both fields are restricted. ScheduleExpressionTimezone takes IANA time zone
  names and evaluates the expression in local time. ScheduleExpression: at most 256 characters.
- Templated targets (Scheduler "Templated targets", EventBridge "Targets"): a SageMaker
  pipeline ARN as target starts an execution (StartPipelineExecution) with the target's role,
  which needs sagemaker:StartPipelineExecution on that pipeline.
- S3 to EventBridge (S3 user guide, "Using EventBridge"): with EventBridge notifications on,
  every new object sends an "Object Created" event (source aws.s3) with detail.bucket.name and
  detail.object.key; patterns filter keys with {"prefix": ...}. One upload is one event: a
  dataset written as many objects starts as many pipeline executions.
- CloudWatch to EventBridge: "CloudWatch Alarm State Change" events (source aws.cloudwatch)
  with detail.alarmName and detail.state.value (ALARM, OK, INSUFFICIENT_DATA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.aws import policies
from mlops_infra.stages.schedule import parse_cron

if TYPE_CHECKING:
    from pulumi_aws.cloudwatch import EventTargetRetryPolicyArgsDict

START_PIPELINE = ("sagemaker:StartPipelineExecution",)
EXPRESSION_MAX = 256  # CreateSchedule ScheduleExpression length
# A trigger that cannot start the pipeline (throttling, a pipeline being replaced) retries for an
# hour at most: a retraining that starts much later than asked for is rather skipped.
# Also the scheduler target's retry policy (ScheduleTargetRetryPolicyArgsDict has the same keys).
RETRY_POLICY: EventTargetRetryPolicyArgsDict = {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 3}
FIELD_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "weekday": (1, 7)}


class UntranslatableCron(ValueError):
    """The neutral cron means something EventBridge Scheduler cannot express."""


def scheduler_cron(expression: str) -> str:
    """The EventBridge Scheduler expression that fires at the same (local) minutes as the
    neutral 5-field `expression` (stages.schedule semantics). Raises UntranslatableCron when
    both day fields are restricted and neither allows every day (Vixie cron's "either day
    matches", which Scheduler cannot say)."""
    if restricts_either_day(expression):
        raise UntranslatableCron(
            "EventBridge Scheduler cannot fire on a day of the month OR a day of the week: a cron restricts "
            "one of them (the other is '?'), while this schedule restricts both"
        )
    cron = parse_cron(expression)
    if cron.days_restricted and cron.weekdays_restricted:
        day, weekday = "*", "?"  # one of the fields matches every day: so does the schedule
    elif cron.weekdays_restricted:
        day, weekday = "?", _field({d + 1 for d in cron.weekdays}, "weekday")  # Sunday: 0 -> 1
    else:
        day, weekday = _field(cron.days, "day"), "?"
    fields = (_field(cron.minutes, "minute"), _field(cron.hours, "hour"), day, _field(cron.months, "month"), weekday)
    text = f"cron({' '.join(fields)} *)"
    if len(text) > EXPRESSION_MAX:
        raise UntranslatableCron(f"the EventBridge Scheduler expression would be {len(text)} characters "
                                 f"(at most {EXPRESSION_MAX}): {text}")
    return text


def restricts_either_day(expression: str) -> bool:
    """Whether a neutral cron fires on "this day of the month OR this day of the week" (both day
    fields restricted, neither to every day): Vixie cron's rule, which Scheduler cannot say."""
    cron = parse_cron(expression)
    every_day, every_weekday = len(cron.days) == 31, len(cron.weekdays) == 7
    return cron.days_restricted and cron.weekdays_restricted and not (every_day or every_weekday)


def _field(values: set[int] | frozenset[int], field: str) -> str:
    """A set of values as "*" (all), or comma-separated values and ranges ("1-5,7")."""
    low, high = FIELD_RANGES[field]
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(parts)


def new_data_pattern(bucket: str, prefix: str) -> dict[str, Any]:
    """EventBridge pattern: an object was created in `bucket` under `prefix` ("" = anywhere)."""
    detail: dict[str, Any] = {"bucket": {"name": [bucket]}}
    if prefix:
        detail["object"] = {"key": [{"prefix": prefix}]}
    return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}


def alarm_pattern(alarm: str) -> dict[str, Any]:
    """EventBridge pattern: alarm `alarm` went into the ALARM state."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm], "state": {"value": ["ALARM"]}},
    }


def pipeline_arn(partition: str, region: str, account_id: str, pipeline: str) -> str:
    """A pipeline's ARN (SageMaker ARNs carry names in lower case; a trailing "*" makes a pattern)."""
    return f"arn:{partition}:sagemaker:{region}:{account_id}:pipeline/{pipeline.lower()}"


def automation_grants(*, partition: str, region: str, account_id: str, pipelines: str) -> dict[str, Any]:
    """The automation role's inline policy: start executions of the stack's training pipelines
    (names "<stack prefix `pipelines`><model>-training", see naming.pipeline_name) and nothing
    else. One statement for the stack, whatever the number of models: adding a model changes no
    grant."""
    return policies.document([{
        "Sid": "StartStackTrainingPipelines", "Effect": "Allow", "Action": list(START_PIPELINE),
        "Resource": pipeline_arn(partition, region, account_id, f"{pipelines}*-training"),
    }])
