"""Start-up checks shared by the service and scripts/preflight_audit.py.

STARTUP_PREFLIGHT_MODE: off never blocks, fail blocks on critical findings, strict also on warnings.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from datetime import date

from adapters.content_check import check_content
from adapters.storage.database import Database
from agent.paths import DataPaths
from agent.ports import CRM
from agent.settings import CrmProvider, PreflightMode, Settings, TelegramMode

TELEGRAM_TOKEN_RE = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,64}$")
MIN_ADMIN_PASS_LENGTH = 12


class Level(StrEnum):
    ok = "ok"
    warning = "warning"
    critical = "critical"


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    # False for findings that would help an attacker (a weak password): kept out of the unauthenticated
    # diagnostics, still in the log and in scripts/preflight_audit.py.
    public: bool = True


@dataclass
class Report:
    mode: PreflightMode
    checks: list[Check] = field(default_factory=list)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.level is Level.warning]

    @property
    def criticals(self) -> list[Check]:
        return [c for c in self.checks if c.level is Level.critical]

    @property
    def blocking(self) -> bool:
        if self.mode is PreflightMode.off:
            return False
        if self.mode is PreflightMode.strict:
            return bool(self.criticals or self.warnings)
        return bool(self.criticals)

    def as_dict(self, *, public_only: bool = False) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "blocking": self.blocking,
            "checks": [
                {"name": c.name, "level": c.level.value, "detail": c.detail}
                for c in self.checks
                if c.public or not public_only
            ],
        }


@dataclass(frozen=True)
class PreflightInputs:
    """What the checks look at; the composition root builds it (and picks the adapters' own checks)."""

    settings: Settings
    paths: DataPaths
    db: Database
    crm: CRM
    today: Callable[[], date]
    extra_checks: tuple[CheckFn, ...] = ()  # the CRM round trip, the Mini App build, ...


CheckFn = Callable[[PreflightInputs], Awaitable[list[Check]]]


def _data_root(inputs: PreflightInputs) -> list[Check]:
    paths = inputs.paths
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=paths.root, prefix=".preflight-"):
            pass
    except OSError as error:
        return [Check("data_root", Level.critical, f"{paths.root} is not writable: {error.strerror}")]
    checks = [Check("data_root", Level.ok, f"{paths.root} ({paths.root_source})")]
    if inputs.db.is_sqlite and not paths.database_on_persistent_storage and not paths.root_is_tmp:
        checks.append(
            Check("database_path", Level.warning, f"DATABASE_PATH {paths.database_path} is outside {paths.root}")
        )
    if not paths.vector_meta_on_persistent_storage and not paths.root_is_tmp:
        checks.append(
            Check(
                "vector_store_meta_path",
                Level.warning,
                f"VECTOR_STORE_META_PATH {paths.vector_store_meta_path} is outside {paths.root}",
            )
        )
    if inputs.settings.running_on_render and paths.root_is_tmp:
        checks.append(
            Check(
                "render_disk",
                Level.warning,
                "running on Render without a persistent disk: data in /tmp is lost on every deploy",
            )
        )
    return checks


async def _database(inputs: PreflightInputs) -> list[Check]:
    try:
        await inputs.db.ping()
    except Exception as error:  # any driver error means "not reachable"
        return [Check("database", Level.critical, f"{inputs.db.backend} not reachable: {type(error).__name__}")]
    if not await inputs.db.is_migrated():
        # Start-up migrates before it checks, so this only shows in the audit before a first start.
        return [Check("database", Level.warning, "schema is behind: migrations run at start (python -m adapters.main migrate)")]
    return [Check("database", Level.ok, f"{inputs.db.backend} reachable, schema up to date")]


def _telegram(inputs: PreflightInputs) -> list[Check]:
    settings = inputs.settings
    checks: list[Check] = []
    if settings.telegram_bot_token is None:
        checks.append(Check("telegram_token", Level.warning, "TELEGRAM_BOT_TOKEN is not set: the bot is off"))
    elif not TELEGRAM_TOKEN_RE.match(settings.telegram_bot_token.get_secret_value()):
        checks.append(
            Check("telegram_token", Level.critical, "TELEGRAM_BOT_TOKEN does not look like <digits>:<35 chars>")
        )
    else:
        checks.append(Check("telegram_token", Level.ok, "format valid"))
    if settings.telegram_mode is TelegramMode.webhook and settings.telegram_webhook_secret is None:
        # Without it anyone who finds the path can post updates as any user (e.g. a forged /forget).
        strict = settings.startup_preflight_mode is PreflightMode.strict
        checks.append(
            Check(
                "telegram_webhook_secret",
                Level.critical if strict else Level.warning,
                "WEBHOOK MODE WITHOUT TELEGRAM_WEBHOOK_SECRET: anyone can post forged updates as any user; "
                "run `python3 scripts/set_webhook.py --base-url https://<domain>` and set the secret it prints",
            )
        )
    return checks


def _admin(inputs: PreflightInputs) -> list[Check]:
    settings = inputs.settings
    password = settings.admin_pass.get_secret_value()
    level = Level.critical if settings.startup_preflight_mode is PreflightMode.strict else Level.warning
    # Not public: the unauthenticated diagnostics must not tell a guesser the password is weak.
    if settings.admin_pass_is_known:
        detail = "ADMIN_PASS is a published default: admin Basic auth refuses every login until it is changed"
        return [Check("admin_pass", level, detail, public=False)]
    if len(password) < MIN_ADMIN_PASS_LENGTH:
        return [Check("admin_pass", level, f"ADMIN_PASS is shorter than {MIN_ADMIN_PASS_LENGTH} characters", public=False)]
    return [Check("admin_pass", Level.ok, "set")]


def _openai(inputs: PreflightInputs) -> list[Check]:
    if not inputs.settings.llm_configured:
        return [Check("openai", Level.warning, "OPENAI_API_KEY is not set: the assistant runs in offline mode")]
    return [Check("openai", Level.ok, f"model {inputs.settings.openai_model}")]


def missing_crm_settings(settings: Settings) -> list[str]:
    """The variables CRM_PROVIDER still needs (none for `none`)."""
    missing: list[str] = []
    if settings.crm_provider is CrmProvider.tallanto:
        if not settings.tallanto_api_url:
            missing.append("TALLANTO_API_URL")
        if settings.tallanto_api_token is None and settings.tallanto_api_key is None:
            missing.append("TALLANTO_API_TOKEN or TALLANTO_API_KEY")
    elif settings.crm_provider is CrmProvider.amo:
        if not settings.amo_api_url:
            missing.append("AMO_API_URL")
        if settings.amo_access_token is None:
            missing.append("AMO_ACCESS_TOKEN")
    return missing


def _crm_settings(inputs: PreflightInputs) -> list[Check]:
    settings = inputs.settings
    missing = missing_crm_settings(settings)
    if missing:
        return [Check("crm_settings", Level.critical, f"CRM_PROVIDER={settings.crm_provider.value} needs {', '.join(missing)}")]
    return [Check("crm_settings", Level.ok, f"provider {settings.crm_provider.value}")]


_ISSUE_LEVEL = {"error": Level.critical, "warning": Level.warning}


def _content(inputs: PreflightInputs) -> list[Check]:
    """The checks of scripts/validate_catalog.py: errors are critical, warnings stay warnings."""
    settings = inputs.settings
    report = check_content(settings, inputs.today())
    checks = [Check("catalog", _ISSUE_LEVEL[i.level], str(i)) for i in report.catalog_issues]
    checks += [Check("knowledge", _ISSUE_LEVEL[i.level], str(i)) for i in report.knowledge_issues]
    if not report.catalog_issues:
        checks.append(Check("catalog", Level.ok, f"{len(report.brands)} brand(s), {report.programs} programs"))
    if not report.knowledge_issues:
        checks.append(Check("knowledge", Level.ok, f"{report.documents} documents"))
    if settings.openai_vector_store_id and not settings.llm_configured:
        checks.append(
            Check("knowledge", Level.warning, "OPENAI_VECTOR_STORE_ID is set without OPENAI_API_KEY: local index used")
        )
    return checks


async def run_preflight(inputs: PreflightInputs) -> Report:
    report = Report(inputs.settings.startup_preflight_mode)
    report.checks += _data_root(inputs)
    report.checks += await _database(inputs)
    report.checks += _content(inputs)
    report.checks += _telegram(inputs)
    report.checks += _admin(inputs)
    report.checks += _openai(inputs)
    report.checks += _crm_settings(inputs)
    for extra in inputs.extra_checks:
        report.checks += await extra(inputs)
    return report
