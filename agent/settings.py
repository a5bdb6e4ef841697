"""The one settings object: every environment variable the service reads.

No other module reads the environment; entry points call ``load_settings()`` once and pass the
result down. Tests build their own ``Settings(_env_file=None, ...)``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


# Content folders (catalog, knowledge, legal, prompts, webapp) ship with the code: relative settings
# are resolved against the project root so scripts work from any working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class TelegramMode(StrEnum):
    polling = "polling"
    webhook = "webhook"


class PreflightMode(StrEnum):
    off = "off"
    fail = "fail"
    strict = "strict"


class CrmProvider(StrEnum):
    none = "none"
    tallanto = "tallanto"
    amo = "amo"


# Passwords anyone can guess: the runbook's and .env.example's sample first.
KNOWN_ADMIN_PASSWORDS = frozenset({"strong_password", "admin", "password", "123456", "qwerty", "changeme"})


class ConfigError(Exception):
    """Raised when the environment holds an invalid value; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # the runbook's `.env` leaves optional values blank
        extra="ignore",
        case_sensitive=False,
    )

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_mode: TelegramMode = TelegramMode.polling
    telegram_webhook_path: str = "/telegram/webhook"
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    manager_chat_id: int | None = None
    # The manager relay (README "For the sales team"): a topic per client in MANAGER_CHAT_ID, messages
    # copied both ways. Off: handoff cards only, as before.
    manager_relay_enabled: bool = True
    # Human mode ends by itself when no manager has written for this long.
    handoff_idle_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # The durable update queue both modes share (see README "Telegram bot").
    telegram_queue_concurrency: int = Field(default=256, ge=1, le=1000)  # chats processed at once per process
    telegram_queue_max_attempts: int = Field(default=5, ge=1, le=100)  # then the update is dead-lettered
    telegram_queue_retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)  # doubles per attempt
    telegram_queue_retry_max_seconds: float = Field(default=3600.0, gt=0)  # ... up to this
    telegram_queue_lease_seconds: float = Field(default=60.0, ge=1, le=3600)  # a dead worker's claim expires
    telegram_queue_poll_seconds: float = Field(default=0.5, gt=0, le=60)  # idle check for other processes' rows
    telegram_queue_retention_hours: float = Field(default=48.0, gt=0)  # done rows (and duplicate detection)
    # Retries of the loops around Telegram and the database (adapters/retry.py's Backoff: the base
    # doubles per failure in a row up to the max). Claims start at twice TELEGRAM_QUEUE_POLL_SECONDS.
    telegram_claim_retry_max_seconds: float = Field(default=10.0, gt=0)
    telegram_polling_retry_base_seconds: float = Field(default=2.0, gt=0)
    telegram_polling_retry_max_seconds: float = Field(default=60.0, gt=0)
    telegram_startup_retry_base_seconds: float = Field(default=2.0, gt=0)
    telegram_startup_retry_max_seconds: float = Field(default=300.0, gt=0)
    telegram_send_retry_base_seconds: float = Field(default=0.5, gt=0)
    telegram_send_retry_max_seconds: float = Field(default=10.0, gt=0)
    # Telegram's sending limits: about 1 message/s per chat (short bursts allowed), 30/s overall.
    telegram_send_global_per_second: int = Field(default=30, ge=1)
    telegram_send_chat_per_second: float = Field(default=1.0, gt=0)
    telegram_send_chat_burst: int = Field(default=3, ge=1)

    # OpenAI
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4.1"
    openai_base_url: str | None = None
    openai_web_fallback_enabled: bool = True
    openai_web_fallback_domain: str = "kmipt.ru"
    openai_vector_store_id: str | None = None
    openai_timeout_seconds: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=3, ge=0, le=10)
    # Stream model answers (Responses API SSE) so replies grow live; false for servers without streaming.
    openai_stream: bool = True
    # Model rounds (model call + its tool calls) per user turn before a graceful answer is forced.
    openai_max_tool_rounds: int = Field(default=4, ge=1, le=10)
    # Daily token budgets (UTC day, from model_usage); a spent budget degrades to the offline policy.
    openai_daily_token_budget_per_user: int = Field(default=60_000, ge=0)
    openai_daily_token_budget_total: int = Field(default=3_000_000, ge=0)

    # Assistant HTTP endpoint
    assistant_api_token: SecretStr | None = None
    assistant_rate_limit_window_seconds: int = Field(default=60, gt=0)
    assistant_rate_limit_user_requests: int = Field(default=24, gt=0)
    assistant_rate_limit_ip_requests: int = Field(default=72, gt=0)
    # Requests per IP and window that fail authentication (wrong token, no or bad initData): counted
    # apart from the IP limit above, so junk requests can't lock out real users on the same address.
    assistant_rate_limit_auth_failures: int = Field(default=30, gt=0)
    # POST /api/leads (the Mini App form): per Telegram user and per client IP within the window.
    leads_rate_limit_window_seconds: int = Field(default=3600, gt=0)
    leads_rate_limit_user_requests: int = Field(default=5, gt=0)
    leads_rate_limit_ip_requests: int = Field(default=30, gt=0)

    startup_preflight_mode: PreflightMode = PreflightMode.fail

    # CRM
    crm_provider: CrmProvider = CrmProvider.none
    crm_api_exposed: bool = False
    crm_rate_limit_window_seconds: int = Field(default=300, gt=0)
    crm_rate_limit_ip_requests: int = Field(default=180, gt=0)
    crm_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The outbox's retries of a failed push: doubling from the base up to the max (a CRM's Retry-After
    # is honoured up to the max too).
    crm_retry_base_seconds: float = Field(default=5.0, gt=0)
    crm_retry_max_seconds: float = Field(default=1800.0, gt=0)
    tallanto_api_url: str | None = None
    tallanto_api_key: SecretStr | None = None
    tallanto_api_token: SecretStr | None = None
    # Kept as text on purpose: the runbook demands the literal "1" to expose /api/crm/*.
    tallanto_read_only: str = ""
    tallanto_default_contact_module: str = "contacts"
    amo_api_url: str | None = None
    amo_access_token: SecretStr | None = None

    # Brand, content, admin
    brand_default: str = "kmipt"
    catalog_dir: str = "catalog"
    knowledge_dir: str = "knowledge"
    legal_dir: str = "legal"
    admin_user: str = "admin"
    admin_pass: SecretStr = SecretStr("strong_password")
    # Failed admin Basic-auth attempts before 429 (per client IP, per username) within the window.
    admin_login_window_seconds: int = Field(default=900, gt=0)
    admin_login_max_failures_per_ip: int = Field(default=10, gt=0)
    admin_login_max_failures_per_user: int = Field(default=30, gt=0)
    admin_miniapp_enabled: bool = False
    admin_telegram_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    admin_webapp_url: str | None = None
    user_webapp_url: str | None = None
    webapp_initdata_max_age_seconds: int = Field(default=86400, ge=0)
    # The bot's numeric id, for checking initData by Telegram's Ed25519 signature when this process
    # does not hold TELEGRAM_BOT_TOKEN (e.g. an API-only deployment); the token's HMAC check wins.
    webapp_bot_id: int | None = Field(default=None, gt=0)
    sales_tone_path: str | None = None
    webapp_dist_path: str | None = None

    # Storage and paths
    persistent_data_path: str | None = None
    render_disk_mount_path: str | None = None
    render: str | None = None  # Render sets RENDER=true in every service
    database_path: str | None = None
    vector_store_meta_path: str | None = None
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None

    # Process
    metrics_enabled: bool = False  # GET /metrics (Prometheus), behind admin Basic auth
    # Addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed (rate limits, logs).
    trusted_proxy_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "0.0.0.0"
    # What one connection may make the server hold (adapters/http/server_limits.py, README «Security
    # and privacy»): request head size and header count (431), time to send the head and the body (408),
    # idle keep-alive, and connections/tasks at once (503 beyond).
    server_max_header_bytes: int = Field(default=32 * 1024, ge=4096, le=1024 * 1024)
    server_max_headers: int = Field(default=100, ge=10, le=1000)
    server_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    server_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    server_keep_alive_seconds: float = Field(default=5.0, gt=0, le=300)
    server_limit_concurrency: int = Field(default=1000, ge=1)
    port: int = Field(default=8000, gt=0, lt=65536)
    log_level: str = "INFO"
    # `serve` worker processes on this host (uvicorn workers, one event loop each); see README.
    web_concurrency: int = Field(default=1, ge=1, le=64)

    @field_validator("admin_telegram_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            for part in parts:
                if not part.lstrip("-").isdigit():
                    raise ValueError(f"expected comma-separated numeric Telegram ids, got {part!r}")
            return [int(p) for p in parts]
        return value

    @field_validator("trusted_proxy_ips", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            import ipaddress

            parts = [p.strip() for p in value.split(",") if p.strip()]
            for part in parts:
                ipaddress.ip_network(part, strict=False)  # raises ValueError naming the bad entry
            return parts
        return value

    @field_validator("telegram_webhook_path")
    @classmethod
    def _webhook_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("sales_tone_path")
    @classmethod
    def _sales_tone_file(cls, value: str | None) -> str | None:
        if value:
            path = Path(value) if Path(value).is_absolute() else PROJECT_ROOT / value
            if not path.is_file():
                raise ValueError(f"no such file: {path}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())

    @property
    def running_on_render(self) -> bool:
        return bool(self.render) and self.render.lower() not in {"0", "false", "no"}

    @property
    def admin_pass_is_known(self) -> bool:
        """A published password (the runbook's sample, the usual defaults): admin Basic auth refuses
        every login until ADMIN_PASS is changed (adapters/http/auth.py), whatever the preflight mode."""
        return self.admin_pass.get_secret_value() in KNOWN_ADMIN_PASSWORDS

    @property
    def tallanto_read_only_enabled(self) -> bool:
        return self.tallanto_read_only == "1"

    def project_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def catalog_path(self) -> Path:
        return self.project_path(self.catalog_dir)

    @property
    def knowledge_path(self) -> Path:
        return self.project_path(self.knowledge_dir)

    @property
    def legal_path(self) -> Path:
        return self.project_path(self.legal_dir)

    @property
    def webapp_dist(self) -> Path:
        return self.project_path(self.webapp_dist_path or "webapp/dist")

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                if raw and len(raw) >= 4:
                    values.append(raw)
        return values


def format_validation_error(error: ValidationError) -> str:
    """One line per bad variable, named as in the environment."""
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "?"
        lines.append(f"Invalid environment variable {name}: {item['msg']}")
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
