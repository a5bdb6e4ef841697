from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.settings import ConfigError, CrmProvider, Settings, TelegramMode, load_settings

REPO = Path(__file__).resolve().parent.parent
RUNBOOK_VARS = [
    "TELEGRAM_BOT_TOKEN", "TELEGRAM_MODE", "TELEGRAM_WEBHOOK_PATH", "TELEGRAM_WEBHOOK_SECRET", "OPENAI_API_KEY",
    "OPENAI_MODEL", "OPENAI_WEB_FALLBACK_ENABLED", "OPENAI_WEB_FALLBACK_DOMAIN", "ASSISTANT_API_TOKEN",
    "ASSISTANT_RATE_LIMIT_WINDOW_SECONDS", "ASSISTANT_RATE_LIMIT_USER_REQUESTS", "ASSISTANT_RATE_LIMIT_IP_REQUESTS",
    "STARTUP_PREFLIGHT_MODE", "CRM_PROVIDER", "CRM_API_EXPOSED", "CRM_RATE_LIMIT_WINDOW_SECONDS",
    "CRM_RATE_LIMIT_IP_REQUESTS", "BRAND_DEFAULT", "ADMIN_USER", "ADMIN_PASS", "ADMIN_MINIAPP_ENABLED",
    "ADMIN_TELEGRAM_IDS", "ADMIN_WEBAPP_URL", "USER_WEBAPP_URL", "SALES_TONE_PATH", "WEBAPP_DIST_PATH",
    "PERSISTENT_DATA_PATH", "RENDER_DISK_MOUNT_PATH", "TALLANTO_API_URL", "TALLANTO_API_KEY", "TALLANTO_API_TOKEN",
    "TALLANTO_READ_ONLY", "TALLANTO_DEFAULT_CONTACT_MODULE", "AMO_API_URL", "AMO_ACCESS_TOKEN",
    "OPENAI_VECTOR_STORE_ID", "DATABASE_PATH", "VECTOR_STORE_META_PATH", "DATABASE_URL", "REDIS_URL", "HOST",
    "PORT", "LOG_LEVEL", "TELEGRAM_API_BASE_URL", "OPENAI_BASE_URL",
]


def test_every_runbook_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(set(RUNBOOK_VARS) - fields) == []


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    expected = {name.upper() for name in Settings.model_fields} - {"RENDER"}
    assert sorted(expected - listed) == []


def test_runbook_env_block_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runbook's own `.env` block, blanks included, is a valid configuration."""
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            monkeypatch.setenv(key, value.split("#", 1)[0].strip())
    settings = load_settings(_env_file=None)
    assert settings.telegram_mode is TelegramMode.polling
    assert settings.crm_provider is CrmProvider.none
    assert settings.telegram_webhook_secret is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_MODE", "pooling"),
        ("ASSISTANT_RATE_LIMIT_USER_REQUESTS", "many"),
        ("ADMIN_TELEGRAM_IDS", "123,abc"),
        ("STARTUP_PREFLIGHT_MODE", "sometimes"),
        ("CRM_PROVIDER", "bitrix"),
        ("PORT", "99999"),
        ("TELEGRAM_WEBHOOK_PATH", "telegram/webhook"),
    ],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert name in message
    assert "\n" not in message


def test_admin_ids_and_blank_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "123456789, 987654321")
    monkeypatch.setenv("ASSISTANT_API_TOKEN", "")
    settings = load_settings(_env_file=None)
    assert settings.admin_telegram_ids == [123456789, 987654321]
    assert settings.assistant_api_token is None


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-very-secret-value-123")
    settings = load_settings(_env_file=None)
    assert "sk-test-very-secret-value-123" not in repr(settings)
    assert "sk-test-very-secret-value-123" in settings.secret_values()


def test_tallanto_read_only_needs_literal_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("1", True), ("true", False), ("yes", False)]:
        monkeypatch.setenv("TALLANTO_READ_ONLY", value)
        assert load_settings(_env_file=None).tallanto_read_only_enabled is expected
