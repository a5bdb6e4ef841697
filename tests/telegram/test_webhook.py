"""The webhook route: secret, bad bodies, duplicates, size limit, and where it is mounted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.assistant import InstantAssistant
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import SECRET, running_service, telegram_settings

PATH = "/telegram/webhook"
GOOD = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


@pytest.fixture
async def service(tmp_path: Path, fake_api: FakeBotAPI):  # type: ignore[no-untyped-def]
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as running:
        yield running


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}])
async def test_missing_or_wrong_secret_is_401(service, headers) -> None:  # type: ignore[no-untyped-def]
    response = await service.client.post(PATH, json=updates.message(1, 7, "hi"), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"ok": False, "reason": "unauthorized"}
    assert (await service.runtime.telegram.queue.stats())["counts"]["queued"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_update"),
        (b'"text"', "invalid_update"),
        (b"{}", "invalid_update"),
        (b'{"update_id": "12"}', "invalid_update"),
        (b'{"update_id": 1.5}', "invalid_update"),
        (b'{"update_id": true}', "invalid_update"),
        (b'{"update_id": null}', "invalid_update"),
    ],
)
async def test_bad_bodies_are_400(service, body: bytes, reason: str) -> None:  # type: ignore[no-untyped-def]
    response = await service.client.post(PATH, content=body, headers={**GOOD, "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["reason"] == reason


async def test_duplicate_update_is_acknowledged_and_processed_once(service, fake_api: FakeBotAPI) -> None:  # type: ignore[no-untyped-def]
    first = await service.client.post(PATH, json=updates.message(10, 7, "привет"), headers=GOOD)
    second = await service.client.post(PATH, json=updates.message(10, 7, "привет"), headers=GOOD)
    assert first.status_code == 200 and first.json() == {"ok": True, "queued": True}
    assert second.status_code == 200 and second.json() == {"ok": True, "queued": False, "duplicate": True}
    await service.settle(10)
    await wait_for(lambda: len(fake_api.sent_to(7)) == 1)
    assert len(service.runtime.assistant.seen) == 1


async def test_body_over_one_mebibyte_is_413(service) -> None:  # type: ignore[no-untyped-def]
    big = b'{"update_id": 1, "x": "' + b"a" * (1024 * 1024) + b'"}'
    response = await service.client.post(PATH, content=big, headers={**GOOD, "content-type": "application/json"})
    assert response.status_code == 413


async def test_unknown_update_type_is_stored_and_finished(service) -> None:  # type: ignore[no-untyped-def]
    response = await service.client.post(PATH, json={"update_id": 77, "poll": {"id": "1"}}, headers=GOOD)
    assert response.json() == {"ok": True, "queued": True}
    await service.settle(77)


async def test_an_update_whose_inner_message_is_not_an_object_is_queued_not_500(service) -> None:  # type: ignore[no-untyped-def]
    """The queue's ordering key read ``{"message": "x"}`` inside an update's object as a message and
    raised on it: a 500 for a well-formed body (the workers dead-letter what is no valid update)."""
    response = await service.client.post(PATH, json={"update_id": 78, "edited_business_message": {"message": "x"}}, headers=GOOD)
    assert response.status_code == 200 and response.json() == {"ok": True, "queued": True}


async def test_webhook_route_exists_only_in_webhook_mode(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url, telegram_mode="polling")
    async with running_service(settings, fake_api, assistant=InstantAssistant(), run_bot=False) as running:
        response = await running.client.post(PATH, json=updates.message(1, 7, "hi"), headers=GOOD)
        assert response.status_code in {404, 405}
        # serve --no-bot in polling mode runs no Telegram services (the `bot` process does).
        assert running.runtime.background == []


async def test_without_secret_any_caller_is_accepted(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url, telegram_webhook_secret=None)
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as running:
        response = await running.client.post(PATH, json=updates.message(3, 7, "hi"))
        assert response.json() == {"ok": True, "queued": True}


async def test_an_unprocessable_update_is_dead_lettered_and_shown_to_admins(service) -> None:  # type: ignore[no-untyped-def]
    response = await service.client.post(PATH, json={"update_id": 5, "message": "not an object"}, headers=GOOD)
    assert response.json() == {"ok": True, "queued": True}
    await service.settle(5)
    view = (await service.client.get("/admin/telegram/dead-updates", auth=("admin", "a-long-test-password"))).json()
    assert view["items"][0]["update_id"] == 5 and "not a valid Telegram update" in view["items"][0]["last_error"]
    diagnostics = (await service.client.get("/api/runtime/diagnostics")).json()
    assert diagnostics["telegram_queue"]["counts"]["dead"] == 1
