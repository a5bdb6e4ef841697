"""The admin Mini App (/admin/miniapp) on conversations the real assistant produced (tests/browser/conftest.py:
_real_dialogs), in light and dark Telegram themes at 390×844. Each test names the defect it guards against."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Browser, Route, expect

from adapters.runtime import Runtime
from agent.leads import LeadRequest
from tests.browser.conftest import ADMIN, BASIC, PARENT, axe_violations, opened, shot, theme_name
from tests.webapp_helpers import TEST_BOT_TOKEN, sign_init_data

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]
THEMES = [pytest.param(False, id="light"), pytest.param(True, id="dark")]


async def _ensure_leads(base: str) -> None:
    """Leads through the real POST /api/leads (a Mini App lead opens a conversation without messages)."""
    async with httpx.AsyncClient(base_url=base) as client:
        for user_id, name, phone in ((3003, "Пётр", "89990001122"), (3004, "Вера", "+7 916 000-22-33")):
            init_data = sign_init_data(TEST_BOT_TOKEN, user={"id": user_id, "first_name": name})
            body = {"name": name, "phone": phone, "consent_personal_data": True, "grade": 11, "goal": "ege",
                    "subject": "physics", "program_ids": ["ege-physics-10-11-offline"]}
            response = await client.post("/api/leads", json=body, headers={"Authorization": f"tma {init_data}"})
            assert response.status_code == 201, response.text


@pytest.mark.parametrize("dark", THEMES)
async def test_leads_screen(browser: Browser, server: tuple[str, Runtime], dark: bool) -> None:
    """Russian labels (no «grade: 11», «CRM: skipped», «miniapp»), tap-to-call, collapsible filters, an
    error shown inline without losing the filters, CSV reachable inside Telegram."""
    base, runtime = server
    theme = theme_name(dark)
    await _ensure_leads(base)
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=ADMIN, dark=dark) as page:
        lead = page.locator("article.lead", has_text="Пётр").first
        await expect(lead).to_be_visible()
        text = await lead.inner_text()
        assert "11 класс · Подготовка к ЕГЭ · Физика" in text and "Мини-приложение" in text
        for raw in ("grade:", "goal:", "ege-", "miniapp", "CRM:", "skipped", "T1", "+00:00"):
            assert raw not in text, raw
        await expect(lead.locator('a[href="tel:+79990001122"]')).to_be_visible()
        tabs = page.get_by_role("tab")
        await expect(tabs.first).to_have_attribute("aria-selected", "true")
        await expect(page.locator("details.filters-box")).not_to_have_attribute("open", "")  # folded on a phone
        await shot(page, f"admin-1-leads-{theme}")
        assert await axe_violations(page) == []

        lead_id = int(await lead.get_attribute("data-lead") or 0)
        await lead.locator("select.lead-status").select_option("contacted")
        await expect(lead.get_by_text("Сохранено")).to_be_visible()
        stored = await runtime.leads.get(lead_id)
        assert stored is not None and stored.status == "contacted"

        await page.get_by_text("Фильтры").click()
        await page.fill("#filter-q", "Пётр")
        await page.fill("#filter-from", "1999-01-01")
        await page.get_by_role("button", name="Найти").click()
        await expect(page.locator("#admin-error")).to_contain_text("Проверьте фильтры")
        await expect(page.locator("#filter-q")).to_have_value("Пётр")  # the filters survive the error
        await expect(page.get_by_role("tab", name="Заявки")).to_be_visible()
        await shot(page, f"admin-2-filter-error-{theme}")
        await page.fill("#filter-from", "")
        await page.get_by_role("button", name="Найти").click()
        await expect(page.locator("article.lead")).to_have_count(1)

        await page.locator("#tg-main").click()  # MainButton «Выгрузить в CSV» inside Telegram
        await page.wait_for_function("window.__opened.length > 0")
        url = (await page.evaluate("window.__opened"))[-1]
        assert "/admin/leads.csv/signed?" in url and "q=" in url
    async with httpx.AsyncClient() as client:  # the phone's browser: no initData, no password
        download = await client.get(url)
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 2 and "Пётр" in rows[1]


@pytest.mark.parametrize("dark", THEMES)
async def test_conversations_and_transcript(browser: Browser, server: tuple[str, Runtime], dark: bool) -> None:
    """Tool calls and cards the service really stored are shown; cards reachable by keyboard; a failed
    release says so; formatted transcript; Mini App leads' empty conversations are not listed."""
    base, runtime = server
    theme = theme_name(dark)
    await _ensure_leads(base)

    async def release_fails_once(route: Route) -> None:
        if not getattr(release_fails_once, "failed", False):
            release_fails_once.failed = True  # type: ignore[attr-defined]
            await route.fulfill(status=500, json={"ok": False, "reason": "internal_error"})
        else:
            await route.continue_()

    async def before(page) -> None:  # type: ignore[no-untyped-def]
        await page.route("**/release", release_fails_once)

    async with opened(browser, f"{base}/admin/miniapp", telegram_user=ADMIN, dark=dark, before=before) as page:
        await page.get_by_role("tab", name="Диалоги").click()
        conversations = page.locator("button.conversation")
        await expect(conversations.first).to_be_visible()
        names = await conversations.all_inner_texts()
        assert not [n for n in names if "Пётр" in n or "Вера" in n]  # no empty Mini App lead conversations
        await page.locator("#filter-handoff").check()
        irina = page.locator("button.conversation", has_text="Ирина")
        await expect(irina).to_have_count(1)
        await irina.focus()
        await page.keyboard.press("Enter")  # keyboard-reachable
        await expect(page.get_by_role("heading", name="Диалог №")).to_be_visible()
        transcript = page.locator(".transcript")
        await expect(transcript.locator(".tools").first).to_contain_text("Вызовы инструментов: 1 — поиск по каталогу")
        await expect(transcript.locator(".tools").first).to_contain_text("Показаны программы: ")
        await expect(transcript.locator("li").first).to_be_visible()  # the reply's list kept
        await expect(transcript.locator('a[href="https://kmipt.ru/"]').first).to_be_visible()
        await expect(transcript).to_contain_text("Клиент")
        await expect(transcript).not_to_contain_text("assistant")
        await expect(transcript).not_to_contain_text("[кнопка")
        await expect(transcript).to_contain_text("Нажата кнопка «Позвать менеджера»")
        await expect(page.locator("#tg-back")).to_be_visible()
        await shot(page, f"admin-3-transcript-{theme}")
        assert await axe_violations(page) == []

        await page.locator("#release").click()
        await expect(page.locator(".notice")).to_contain_text("Не получилось")
        await page.locator("#release").click()
        await expect(page.locator("#release")).to_have_count(0)
        conversation_id = int((await page.get_by_role("heading", name="Диалог №").inner_text()).split("№")[1])
        released = await runtime.conversations.get(conversation_id)
        assert released is not None and released.human_mode_until is None
        await page.locator("#tg-back").click()
        await expect(page.locator("button.conversation")).to_have_count(0)  # none waits for a manager now
    await _back_to_a_manager(runtime, conversation_id)


async def _back_to_a_manager(runtime: Runtime, conversation_id: int) -> None:
    """The next theme's run finds Ирина waiting again: the user asks for a manager once more."""
    from agent.types import Channel, Inbound

    assert runtime.assistant is not None
    await runtime.assistant.handle(Inbound(channel=Channel.telegram, user_id="4004", choice="handoff"))
    state = await runtime.conversations.get(conversation_id)
    assert state is not None and state.human_mode_until is not None


@pytest.mark.parametrize("dark", THEMES)
async def test_funnel_is_true_and_drawn(browser: Browser, server: tuple[str, Runtime], dark: bool) -> None:
    """Stages never widen on data from real dialogs; charts, not tables that overflow a phone."""
    base, _ = server
    theme = theme_name(dark)
    await _ensure_leads(base)
    async with httpx.AsyncClient(base_url=base, auth=BASIC) as client:
        totals = (await client.get("/admin/funnel")).json()["totals"]
    stages = [totals[k] for k in ("conversations", "qualified", "programs_shown", "contact_left", "crm_delivered")]
    assert stages == sorted(stages, reverse=True) and totals["programs_shown"] >= 2, totals
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=ADMIN, dark=dark) as page:
        await page.get_by_role("tab", name="Воронка").click()
        chart = page.locator("svg.funnel-chart")
        await expect(chart).to_be_visible()
        await expect(chart).to_contain_text(f"Показаны программы: {totals['programs_shown']}")
        await expect(chart).to_contain_text("%)")
        await expect(page.locator("svg.bars-chart")).to_be_visible()
        await page.select_option("#funnel-source", "vk_ads")
        await expect(chart.or_(page.locator("svg.funnel-chart"))).to_contain_text("Диалоги: 1")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width  # the tables scroll inside their box; the page does not
        await shot(page, f"admin-4-funnel-{theme}")
        assert await axe_violations(page) == []
        await page.fill("#funnel-from", "1999-01-01")
        await page.get_by_role("button", name="Показать").click()
        await expect(page.locator("#admin-error")).to_be_visible()
        await expect(page.locator("#funnel-from")).to_have_value("1999-01-01")


async def test_non_admin_sees_no_tabs(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=PARENT) as page:
        await expect(page.locator("#admin-error")).to_contain_text("Нет доступа")
        await expect(page.get_by_role("tab")).to_have_count(0)  # `hidden` wins over .tabs{display:flex}
        await expect(page.locator("nav.tabs")).to_be_hidden()
        await shot(page, "admin-forbidden-light")


async def test_admin_in_browser_with_basic_auth(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    await _ensure_leads(base)
    async with opened(browser, f"{base}/admin/miniapp", basic=BASIC) as page:
        await expect(page.locator("article.lead").first).to_be_visible()
        async with page.expect_download() as download:
            await page.get_by_role("button", name="Выгрузить в CSV").click()
        assert (await download.value).suggested_filename == "leads.csv"


@pytest.mark.parametrize("dark", THEMES)
async def test_consents_screen_shows_a_withdrawal_and_what_to_remove_in_the_crm(
    browser: Browser, server: tuple[str, Runtime], dark: bool
) -> None:
    """A withdrawal must be visible to the school: the «Согласия» tab lists it with the requests the CRM
    already holds (to remove there by hand), and the lead card no longer shows a phone."""
    base, runtime = server
    user_id_in_telegram = 3010 + int(dark)
    # The lead through the service the form uses (the per-IP lead limit stays for the other tests).
    user = await runtime.users.get_or_create("telegram", str(user_id_in_telegram))
    assert runtime.lead_service is not None and user.id is not None
    await runtime.lead_service.record_consent(user_id=user.id, brand="kmipt", granted=True, channel="miniapp", telegram_id=user_id_in_telegram)
    request = LeadRequest(user_id=user.id, brand="kmipt", channel="miniapp", phone="+7 916 000-44-55", name="Анна", profile={"grade": 9, "goal": "oge"})
    lead_id = (await runtime.lead_service.create(request, now=datetime.now(UTC))).lead_id
    await runtime.leads.set_crm_status(lead_id, "delivered", crm_id=f"amo-{lead_id}")  # as a push records it
    async with httpx.AsyncClient(base_url=base) as client:
        withdrawn = await client.post(f"/admin/users/{user.id}/forget", auth=BASIC)
        assert withdrawn.status_code == 200, withdrawn.text
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=ADMIN, dark=dark) as page:
        await expect(page.locator(f'article.lead[data-lead="{lead_id}"]')).to_contain_text("Телефон удалён")
        await page.get_by_role("tab", name="Согласия").click()
        await page.select_option("#filter-consent", "withdrawn")
        card = page.locator("article.consent").first
        await expect(card).to_contain_text("Согласие отозвано")
        await expect(card).to_contain_text(f"заявка №{lead_id} (CRM amo-{lead_id})")
        await expect(card).to_contain_text("в течение 30 дней")
        await expect(card).to_contain_text("Администратор")  # the channel, in Russian
        assert "withdrawn" not in await card.inner_text()
        await shot(page, f"admin-5-consents-{theme_name(dark)}")
        assert await axe_violations(page) == []
