"""What a cloud backend is. Importing this (or a backend's __init__) loads no cloud SDK.

A backend is one folder, backends/<cloud>/, found by convention:
- __init__.py defines BACKEND, an instance of a Backend subclass (light: no SDK);
- settings.py: the pydantic model of the spec's clouds.<cloud> block;
- naming.py: the NameStyle of every physical name kind it generates;
- catalog.py: neutral compute -> instance types per purpose;
- <stage>.py for each stage it implements, with `build(ctx) -> <Stage>Outputs`
  (these import the SDK). A stage without a module must be listed in
  `unsupported` with a human reason, which `validate` shows.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from pydantic import BaseModel

from mlops_infra.naming import NameStyle, Namer
from mlops_infra.spec.problems import Problem

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.replacement import ResourceFacts
    from mlops_infra.spec.models import SpecBase


@dataclass(frozen=True)
class CredentialSources:
    """Where a cloud's SDKs look for credentials, as data (backends/<cloud>/credentials.py).

    Checked offline before any engine run, so a missing login is one clear message
    instead of a provider failure halfway through a deployment.
    """

    env_groups: tuple[tuple[str, ...], ...]  # credentials exist when every variable of one group is set
    files: tuple[str, ...]  # ... or one of these files exists (relative to the home directory)
    login_hint: str  # the usual ways to log in
    error_markers: tuple[str, ...] = ()  # provider messages that mean missing or expired credentials


@dataclass(frozen=True)
class Singleton:
    """An object a cloud has once per account, project, subscription or region: one stack owns it.

    `key` says where it is unique ("gcp/project/acme-ml/audit-config"): two stacks whose
    singletons share a key must not both own it (spec: governance.singletons).
    """

    key: str
    what: str  # "the project's data-access audit configuration", for messages


@dataclass(frozen=True)
class Gap:
    """Something a cloud cannot do as the spec says, with the human reason (SkyPilot-style data).

    validate reports it where the spec asks for it, and the README's per-cloud table is
    generated from every backend's gaps (python -m mlops_infra.docs gaps).
    """

    reason: str  # what the cloud does instead, or why it cannot: the validate message
    hint: str = ""  # what the user can do instead
    severity: str = "error"  # "error": the cloud would reject it; "warning": it has no effect there


_NO_VALUE: Any = object()  # Backend.gap without a value to show


class Backend:
    name: ClassVar[str]  # "aws": the folder name and the --cloud value
    display_name: ClassVar[str]  # "AWS"
    sdk_package: ClassVar[str]  # "pulumi_aws": the only SDK planning on this cloud may import
    settings_model: ClassVar[type[BaseModel]]  # the clouds.<name> block
    naming_styles: ClassVar[Mapping[str, NameStyle]]
    unsupported: ClassVar[Mapping[str, str]] = {}  # stage -> why this cloud cannot do it (yet)
    # Feature (a spec path, e.g. "models[].serving.rollout.linear") -> why this cloud cannot do it.
    gaps: ClassVar[Mapping[str, Gap]] = {}
    # models[].serving.mode values this cloud deploys; each other mode needs a gap
    # "models[].serving.mode.<mode>" with the reason (checks.serving_modes).
    serving_modes: ClassVar[frozenset[str]] = frozenset({"realtime"})

    settings_example: ClassVar[str] = ""  # shown when clouds.<name> is missing
    # Resource types that grant permissions or enable services: made by the foundation stages,
    # later stages' acting resources wait for them (StageContext.prerequisites).
    prerequisite_types: ClassVar[frozenset[str]] = frozenset()

    def require_sdk(self) -> None:
        """Planning or deploying here needs this cloud's Pulumi SDK: its extra installs it.

        Checked without importing it (the SDKs are large); a missing one is exit 3, naming the extra.
        """
        from mlops_infra.errors import ToolingMissing

        try:
            found = importlib.util.find_spec(self.sdk_package) is not None
        except (ImportError, ValueError):  # a broken or half-removed install counts as missing
            found = False
        if not found:
            raise ToolingMissing(
                f"{self.display_name} needs its Pulumi SDK ({self.sdk_package.replace('_', '-')}), which is not "
                "installed",
                hint=f"pip install 'mlops-infra[{self.name}]' (or 'mlops-infra[all]' for every cloud)",
            )

    # --- facts about stages -------------------------------------------------
    def supports(self, stage: str) -> bool:
        return importlib.util.find_spec(f"{self._package()}.{stage}") is not None

    def stage_module(self, stage: str) -> ModuleType:
        return importlib.import_module(f"{self._package()}.{stage}")

    def _package(self) -> str:
        return f"mlops_infra.backends.{self.name}"

    # Facts for the rules every cloud applies (backends/checks.py).
    scale_to_zero: ClassVar[bool] = False  # whether endpoints may run at min_replicas: 0
    endpoint_service: ClassVar[str] = "online endpoints"  # named when min_replicas: 0 is refused
    scale_to_zero_hint: ClassVar[str] = "set min_replicas: 1"
    archive_tier: ClassVar[str] = "archive storage"
    archive_minimum_days: ClassVar[int] = 0  # the archive tier's minimum billed duration (0: none)
    storage_service: ClassVar[str] = ""  # who bills it ("S3", "GCS", "Azure Storage")

    # --- validation ---------------------------------------------------------
    def check(self, spec: "SpecBase", settings: Any) -> list[Problem]:
        """Validate a structurally valid spec for this cloud: the shared rules with this cloud's
        facts, then its own checks (check_cloud)."""
        from mlops_infra.backends import checks

        if settings is None:
            return []
        overrides = getattr(getattr(settings, "overrides", None), "models", {})
        problems = checks.unknown_override_models(spec, self.name, overrides)

        def overridden(model: Any, purpose: str) -> bool:
            field = self.override_field(purpose)
            return bool(field and model.name in overrides and getattr(overrides[model.name], field))

        problems += checks.compute_misses(
            spec,
            overridden=overridden,
            resolve=lambda compute, purpose: self.resolve_compute(compute, purpose, settings),
        )
        if not self.scale_to_zero:
            problems += checks.no_scale_to_zero(spec, service=self.endpoint_service, hint=self.scale_to_zero_hint)
        if self.archive_minimum_days:
            problems += checks.archive_minimum(
                spec, minimum_days=self.archive_minimum_days, tier=self.archive_tier, cloud=self.storage_service
            )
        problems += checks.serving_modes(
            spec,
            offered=self.serving_modes,
            cloud=self.display_name,
            reason=lambda mode: self.gaps[f"models[].serving.mode.{mode}"].reason
            if f"models[].serving.mode.{mode}" in self.gaps
            else "not implemented for this cloud",
        )
        problems += self.check_cloud(spec, settings)
        # Each stage module holds its own checks beside its build (and imports its SDK only
        # inside build, so validating loads none): check(spec, settings) -> list[Problem].
        from mlops_infra.stages import all_stages

        for stage in all_stages():
            if stage.used(spec) and self.supports(stage.name):
                own = getattr(self.stage_module(stage.name), "check", None)
                if own is not None:
                    problems += own(spec, settings)
        return problems

    def gap(self, feature: str, path: tuple, *, value: Any = _NO_VALUE) -> Problem:
        """The finding for a feature this cloud cannot do, located at `path` (a key of `gaps`);
        without `value` the problem shows none (not "got None")."""
        from mlops_infra.stages.base import finding

        gap = self.gaps[feature]
        shown = {} if value is _NO_VALUE else {"value": value}
        return finding(path, gap.reason, hint=gap.hint or None, severity=gap.severity, **shown)

    def check_cloud(self, spec: "SpecBase", settings: Any) -> list[Problem]:
        """This cloud's own checks (catalog overrides, service limits, settings without effect)."""
        return []

    def override_field(self, purpose: str) -> str | None:
        """The clouds.<cloud>.overrides.models.<model> field that replaces the catalog for `purpose`
        (None: this cloud has no overrides)."""
        return None

    def resolve_compute(self, compute: Any, purpose: str, settings: Any) -> Any:
        """The catalog's choice for a neutral compute block; raises CatalogMiss. Without a
        catalog (the workload asks for cpus, memory and GPUs directly) nothing is missed."""
        return None

    # --- naming -------------------------------------------------------------
    def name_scope(self, settings: Any) -> str:
        """Where global uniqueness is judged; feeds the hash of globally unique names."""
        return ""

    def namer(self, spec: "SpecBase", settings: Any) -> Namer:
        return Namer(
            cloud=self.name,
            project=spec.project,
            environment=spec.environment,
            styles=self.naming_styles,
            scope=self.name_scope(settings),
        )

    # --- teardown -------------------------------------------------------------
    # Resource types a default `destroy` keeps (protected): the data, the keys, and what guards
    # kept data (audit trails and their storage, encryption, versioning, public-access blocks,
    # TLS-only policies, lifecycle rules, access diagnostics). Every resource of these types is
    # protected, and nothing else is (tests/test_teardown.py).
    kept_types: ClassVar[frozenset[str]] = frozenset()
    # type -> the input that lets the cloud delete a non-empty one (buckets, repositories): true
    # only in the teardown program that `destroy --delete-data` runs before deleting.
    force_delete_inputs: ClassVar[Mapping[str, str]] = {}

    def keeps(self, resource_type: str, inputs: Mapping[str, Any]) -> bool:
        """Whether a default `destroy` keeps this resource (it is then protected, nothing else is).

        By type (kept_types); a backend whose cloud uses one type both as a guard and for
        something else (Azure diagnostic settings: audit logs of kept data, and endpoint telemetry)
        narrows it by the resource's inputs.
        """
        return resource_type in self.kept_types

    # --- several stacks in one account ---------------------------------------
    def singletons(self, spec: "SpecBase", settings: Any) -> list[Singleton]:
        """What this stack would own once per account/project/subscription (governance.singletons)."""
        return []

    # Input properties that hold a resource's physical name (dev, staging and prod sharing an
    # account must never produce the same one; tests compare them across stacks).
    physical_name_inputs: ClassVar[frozenset[str]] = frozenset({"name"})
    # --- facts for the offline diff ------------------------------------------
    def resource_facts(self) -> "ResourceFacts":
        """What replaces a resource of this cloud, and which types hold data (resource-facts.json)."""
        from mlops_infra.replacement import load_facts

        return load_facts(self._package())

    # --- credentials --------------------------------------------------------
    def credential_sources(self) -> CredentialSources:
        module = importlib.import_module(f"{self._package()}.credentials")
        return module.CREDENTIALS

    def has_credentials(self, env: Mapping[str, str], home: Path) -> bool:
        sources = self.credential_sources()
        if any(all(env.get(name) for name in group) for group in sources.env_groups):
            return True
        return any((home / relative).is_file() for relative in sources.files)

    @property
    def login_hint(self) -> str:
        return self.credential_sources().login_hint

    def is_credential_error(self, engine_output: str) -> bool:
        """Whether an engine failure is the provider refusing or not finding credentials."""
        text = engine_output.lower()
        return any(marker.lower() in text for marker in self.credential_sources().error_markers)

    # --- engine -------------------------------------------------------------
    def create_provider(self, spec: "SpecBase", settings: Any) -> "pulumi.ProviderResource":
        """The explicit provider every resource of this cloud uses (imports the SDK)."""
        raise NotImplementedError

    def mock_call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        """Answers to data-source invokes under the offline engine (no cloud is called).

        Values that only the cloud knows are the plan's "(known after apply)" marker.
        """
        return {}


class CatalogMiss(Exception):
    """The cloud (or this region) cannot serve a neutral compute requirement."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
