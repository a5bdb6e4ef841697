"""Start-up check of the configured CRM: one cheap authenticated read, reported without secrets."""

from __future__ import annotations

from adapters.preflight import Check, Level, PreflightInputs, missing_crm_settings
from agent.errors import CrmError
from agent.settings import CrmProvider


async def crm_connection(inputs: PreflightInputs) -> list[Check]:
    settings = inputs.settings
    provider = settings.crm_provider
    # `none` needs no check, and missing settings are already reported by the crm_settings check.
    if provider is CrmProvider.none or missing_crm_settings(settings):
        return []
    checks: list[Check] = []
    if provider is CrmProvider.tallanto and settings.tallanto_read_only_enabled:
        checks.append(
            Check(
                "crm_read_only",
                Level.warning,
                "TALLANTO_READ_ONLY=1: writes are refused, so new leads stay in the database with crm_status=failed (read_only)",
            )
        )
    try:
        await inputs.crm.check()
    except CrmError as error:
        # The message names the provider, the call, the status and the CRM's error code; never the token.
        return [*checks, Check("crm_connection", Level.critical, f"{error.kind}: {error}")]
    return [*checks, Check("crm_connection", Level.ok, f"{provider.value}: authenticated read succeeded")]
