"""/leadtest <phone>: a real round trip through the configured CRM, told in plain words.

The test lead is stored (is_test=True, source "leadtest") so it shows in the admin views, then pushed
directly rather than through the outbox, so the admin sees the outcome at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from adapters.crm.payload import lead_payload
from adapters.storage.repositories import LeadRepository
from agent.errors import CrmError, InvalidInput
from agent.leads import LeadService
from agent.phones import normalize_phone
from agent.ports import CRM

BAD_PHONE = "Номер не похож на российский телефон. Пример: /leadtest +79991234567"
PROVIDER_LABELS = {"tallanto": "Tallanto", "amo": "amoCRM"}
SETTING_PREFIX = {"tallanto": "TALLANTO", "amo": "AMO"}
TOKEN_SETTINGS = {"tallanto": "TALLANTO_API_TOKEN (или TALLANTO_API_KEY)", "amo": "AMO_ACCESS_TOKEN"}


@dataclass(frozen=True)
class LeadTestResult:
    ok: bool
    provider: str
    message: str  # Russian, for the admin who sent /leadtest
    lead_id: int | None = None
    crm_ids: dict[str, str] = field(default_factory=dict)
    elapsed_ms: int | None = None


def explain_crm_error(provider: str, error: CrmError) -> str:
    """What went wrong, in words an admin can act on; never the token or the CRM's raw answer."""
    prefix = SETTING_PREFIX.get(provider, provider.upper())
    label = PROVIDER_LABELS.get(provider, provider)
    status = f" (HTTP {error.status})" if error.status else ""
    reasons = {
        "auth": f"{label} не принял токен{status}: проверьте {TOKEN_SETTINGS.get(provider, 'токен')} и права интеграции.",
        "timeout": f"{label} не ответил вовремя: сервер перегружен или недоступен. Попробуйте позже.",
        "network": f"{label} недоступен по сети: проверьте {prefix}_API_URL и доступ сервера в интернет.",
        "rate_limited": f"{label} просит снизить частоту запросов (HTTP 429). Повторите через минуту.",
        "server": f"Ошибка на стороне {label}{status}. Заявки из бота дождутся восстановления в очереди.",
        "read_only": "Включён режим только чтения (TALLANTO_READ_ONLY=1): запись в CRM запрещена, заявки в Tallanto не отправляются.",
        "invalid_json": f"{label} ответил не в формате JSON{status}: проверьте {prefix}_API_URL.",
        "unexpected": f"{label} ответил не так, как ожидалось: проверьте {prefix}_API_URL.",
        "disabled": "CRM не подключена (CRM_PROVIDER=none): заявки сохраняются только в базе и видны в админке.",
    }
    return reasons.get(error.kind, f"{label} отклонил заявку{status}: проверьте настройки полей и воронки.")


@dataclass(frozen=True)
class LeadTest:
    """/leadtest's round trip, built once by the composition root."""

    crm: CRM
    lead_service: LeadService
    leads: LeadRepository  # the stored lead's payload and its delivery status
    brand: str

    async def __call__(self, phone: str) -> LeadTestResult:
        provider = self.crm.name
        try:
            normalize_phone(phone)  # the rule a real lead is held to (the lead service applies it too)
        except InvalidInput:
            return LeadTestResult(False, provider, BAD_PHONE)
        if provider == "none":
            message = explain_crm_error(provider, CrmError("none", retryable=False, kind="disabled"))
            return LeadTestResult(False, provider, message)
        lead_id = await self.lead_service.create_test_lead(phone, brand=self.brand)
        lead = await self.leads.get(lead_id)
        assert lead is not None and lead.id is not None
        started = time.perf_counter()
        try:
            result = await self.crm.push_lead(lead_payload(lead, []))
        except CrmError as error:
            elapsed = int((time.perf_counter() - started) * 1000)
            await self.leads.set_crm_status(lead.id, "failed", error=f"{error.kind}: {error}"[:500])
            return LeadTestResult(False, provider, explain_crm_error(provider, error), lead.id, error.crm_ids, elapsed)
        elapsed = int((time.perf_counter() - started) * 1000)
        crm_id = result.crm_ids.get("lead_id") or result.crm_ids.get("contact_id")
        await self.leads.set_crm_status(lead.id, "delivered", crm_id=crm_id)
        label = PROVIDER_LABELS.get(provider, provider)
        what = "создана" if result.created else "добавлена к уже существующему контакту с этим телефоном"
        ids = ", ".join(f"{k}={v}" for k, v in result.crm_ids.items())
        message = f"Тестовая заявка #{lead.id} {what} в {label} ({ids}) за {elapsed} мс."
        return LeadTestResult(True, provider, message, lead.id, result.crm_ids, elapsed)
