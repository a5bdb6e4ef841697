"""A fake Telegram Bot API server on 127.0.0.1 that real aiogram talks to (TELEGRAM_API_BASE_URL).

Serves getMe, getUpdates (with offset confirmation), sendMessage, sendMessageDraft, answerCallbackQuery,
sendChatAction, setMyCommands, editMessageReplyMarkup, editMessageText, editMessageCaption, deleteWebhook, and for the manager relay getChat
(``forums`` lists the forum supergroups), createForumTopic, editForumTopic, closeForumTopic,
reopenForumTopic (state in ``topics``) and copyMessage; sent messages carry message_thread_id. Records
every call with its time and can answer scripted failures (429 with retry_after, 5xx, 403, 400, a
missing method) or hold a call. Like Telegram, it refuses drafts outside private chats. Run standalone for benchmarks:
``python -m tests.fakes.telegram_api --port 8081 [--record-to calls.jsonl]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Test bot", "username": "test_sales_bot"}
MAX_LONG_POLL_SECONDS = 1.0


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    result: Any = None  # what the fake answered


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeBotAPI:
    def __init__(self, *, record: bool = True) -> None:
        self.record = record
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.confirmed_offset = 0
        self.failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._holds: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Event]] = []
        self.held: list[dict[str, Any]] = []
        # Calls whose caller was gone when the answer was ready (a killed process): never delivered.
        self.aborted: list[Call] = []
        self.forums: set[int] = set()
        self.topics: dict[int, dict[str, Any]] = {}  # message_thread_id -> {chat_id, name, closed}
        self._thread_ids = itertools.count(500)
        self.sent_count = 0
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.extra_routes: list[tuple[str, str, Callable[[web.Request], Any]]] = []

    # --- control -------------------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        for verb, path, handler in self.extra_routes:
            app.router.add_route(verb, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def push_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self._new_update.set()

    def fail_next(self, method: str, status: int, description: str, *, retry_after: int | None = None, times: int = 1) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.failures.setdefault(method, []).extend([(status, body)] * times)

    def hold(self, predicate: Callable[[dict[str, Any]], bool], method: str = "sendMessage") -> asyncio.Event:
        """``method`` calls matching ``predicate`` hang until the returned event is set."""
        release = asyncio.Event()
        self._holds.append((method, predicate, release))
        return release

    def delivered(self, method: str) -> list[dict[str, Any]]:
        """Calls of ``method`` that were answered to a caller still waiting for the answer."""
        return [c.params for c in self.calls if c.method == method and not any(c is a for a in self.aborted)]

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response(len(self.calls_of(request.match_info["method"])))

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def refuse_drafts(self) -> None:
        """Answer sendMessageDraft like a Bot API server that does not have the method."""
        self.fail_next("sendMessageDraft", 404, "Not Found: method not found", times=1000)

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == "sendMessage" and int(c.params["chat_id"]) == chat_id]

    # --- server --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: _decode(v) if isinstance(v, str) else v for k, v in (await request.post()).items()}
        call = Call(method, params)
        if self.record:
            self.calls.append(call)
        for held_method, predicate, release in self._holds:
            if method == held_method and not release.is_set() and predicate(params):
                self.held.append(params)
                await release.wait()
                if request.transport is None or request.transport.is_closing():
                    self.aborted.append(call)
        scripted = self.failures.get(method)
        if scripted:
            status, body = scripted.pop(0)
            return web.json_response(body, status=status)
        if method == "sendMessageDraft" and int(params.get("chat_id") or 0) < 0:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: TEXTDRAFT_PEER_INVALID"}, status=400)
        result = call.result = await self._result(method, params)
        return web.json_response({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            return await self._get_updates(params)
        if method in {"sendMessage", "editMessageReplyMarkup", "editMessageText", "editMessageCaption"}:
            self.sent_count += method == "sendMessage"
            return self._message(params)
        if method == "copyMessage":
            return {"message_id": next(self._message_ids)}
        if method == "getChat":
            return self._chat_info(int(params["chat_id"]))
        if method == "createForumTopic":
            thread = next(self._thread_ids)
            self.topics[thread] = {"chat_id": int(params["chat_id"]), "name": params["name"], "closed": False}
            return {"message_thread_id": thread, "name": params["name"], "icon_color": 7322096}
        if method in {"editForumTopic", "closeForumTopic", "reopenForumTopic"}:
            topic = self.topics[int(params["message_thread_id"])]
            topic["name"] = params.get("name") or topic["name"]
            topic["closed"] = {"closeForumTopic": True, "reopenForumTopic": False}.get(method, topic["closed"])
        return True

    def _chat_info(self, chat_id: int) -> dict[str, Any]:
        gifts = {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False, "premium_subscription": False,
                 "gifts_from_channels": False}
        kind = "private" if chat_id > 0 else ("supergroup" if chat_id in self.forums or chat_id < -10**12 else "group")
        return {"id": chat_id, "type": kind, "title": "Staff", "is_forum": chat_id in self.forums,
                "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self._new_update.clear()
            timeout = min(float(params.get("timeout") or 0), MAX_LONG_POLL_SECONDS)
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return self.updates[: int(params.get("limit") or 100)]

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params.get("chat_id") or 0)
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._message_ids)),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "chat"},
            "from": BOT_USER,
            "text": params.get("text") or "…",
        }
        if isinstance(params.get("reply_markup"), dict) and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        if params.get("message_thread_id"):
            message["message_thread_id"] = int(params["message_thread_id"])
            message["is_topic_message"] = True
            message["chat"]["type"] = "supergroup"
        return message


async def _serve(port: int, record_to: str | None) -> None:
    """Standalone. With ``record_to`` it records every call and, on SIGTERM, writes them there as JSON
    lines (method, chat_id, text, at: time.monotonic(), the same clock in every process on the host);
    GET /_count/{method} says how many calls of a method arrived so far."""
    import signal

    api = FakeBotAPI(record=record_to is not None)
    if record_to is not None:
        api.extra_routes.append(("GET", "/_count/{method}", api._count))
    await api.start(port)
    print(api.base_url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await api.stop()
    if record_to is not None:
        with open(record_to, "w", encoding="utf-8") as out:
            for call in api.calls:
                record = {"method": call.method, "chat_id": call.params.get("chat_id"), "text": call.params.get("text"), "at": call.at}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record-to", help="record the calls and write them to this file on SIGTERM")
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.port, arguments.record_to))
