"""`python -m evals capture <conversation id>`: a stored conversation becomes a new eval file.

Personal data is masked on the way: every phone becomes a fixed test number (+7 900 000-00-NN, still
a phone, so the replay goes through contact capture again), every e-mail user<N>@example.com, and the
names the conversation knows (the user's first name and username, the profile's name, "меня зовут …")
become «Имя». The stored replies become starting expectations (engine, cards, lead, handoff, contact
request); the cassette is empty until the case is recorded against a live model.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.storage.models import Message
from adapters.wiring import build_runtime
from agent.personal_data import EMAIL_RE, PHONE_RE
from agent.settings import Settings
from evals.cases import Case, dump_yaml

CONTACT_MARKER = "[пользователь отправил свой номер телефона]"
HANDOFF_MARKER = "[пользователь попросил менеджера]"
NAME_PLACEHOLDER = "Имя"
INTRODUCTION_RE = re.compile(r"(?i)\b(меня зовут|зовут|я\s+—|я\s+-)\s+[А-ЯЁA-Z][а-яёa-z]+(?:\s+[А-ЯЁA-Z][а-яёa-z]+)?")


class CaptureError(Exception):
    pass


class Masker:
    def __init__(self, names: set[str]) -> None:
        self.phones: dict[str, str] = {}
        self.emails: dict[str, str] = {}
        # Longest first, so «Анна Петрова» goes before «Анна».
        self.names = sorted((n for n in names if n and len(n) >= 2), key=len, reverse=True)

    def phone(self, raw: str) -> str:
        key = re.sub(r"\D", "", raw)[-10:]
        return self.phones.setdefault(key, f"+7 900 000-00-{len(self.phones) + 1:02d}")

    def text(self, text: str) -> str:
        text = EMAIL_RE.sub(lambda m: self.emails.setdefault(m.group(0).lower(), f"user{len(self.emails) + 1}@example.com"), text)
        text = PHONE_RE.sub(lambda m: self.phone(m.group(0)), text)
        text = INTRODUCTION_RE.sub(lambda m: f"{m.group(1)} {NAME_PLACEHOLDER}", text)
        for name in self.names:
            text = re.sub(rf"(?i)(?<!\w){re.escape(name)}(?!\w)", NAME_PLACEHOLDER, text)
        return text


def _turn_input(message: Message, masker: Masker) -> dict[str, Any]:
    choice = (message.meta or {}).get("choice")
    if choice:
        return {"choice": masker.text(choice)}
    if message.content == CONTACT_MARKER:
        return {"contact": masker.phone(f"captured-{len(masker.phones)}")}
    if message.content == HANDOFF_MARKER:
        return {"choice": "handoff"}
    if message.content == "/start":
        return {"start": True}
    return {"say": masker.text(message.content)}


def _expectations(reply: dict[str, Any], seen_leads: set[int], in_handoff: bool) -> dict[str, Any]:
    expect: dict[str, Any] = {}
    actions = reply.get("actions") or []
    if reply.get("silent"):
        return {"silent": True}
    expect["engine"] = reply.get("engine", "offline")
    if reply.get("cards"):
        expect["cards"] = len(reply["cards"])
    lead_id = reply.get("lead_id")
    if lead_id is not None and lead_id not in seen_leads:
        seen_leads.add(lead_id)
        expect["lead_created"] = True
    if "handoff" in actions and not in_handoff:
        expect["handoff"] = True
    buttons = [q.get("payload", "") for q in reply.get("quick_replies") or []]
    if "ask_contact" in actions or any(p.startswith("consent:") for p in buttons):
        expect["ask_contact"] = True
    return expect


async def capture_conversation(settings: Settings, conversation_id: int) -> str:
    runtime = build_runtime(settings)
    try:
        if not await runtime.db.is_migrated():
            raise CaptureError(f"the {runtime.db.backend} database has no conversations (not migrated)")
        conversation = await runtime.conversations.get(conversation_id)
        if conversation is None:
            raise CaptureError(f"conversation {conversation_id} not found in {runtime.db.backend}")
        user = await runtime.users.get(conversation.user_id)
        messages = await runtime.messages.recent(conversation_id, limit=100_000)
    finally:
        await runtime.close()
    names = {conversation.profile.get("name") or ""}
    if user is not None:
        names |= {user.first_name or "", user.username or ""}
    masker = Masker(names)
    turns: list[dict[str, Any]] = []
    seen_leads: set[int] = set()
    in_handoff = False
    for message in messages:
        if message.role == "user":
            turns.append(_turn_input(message, masker))
        elif message.role == "assistant" and turns and "expect" not in turns[-1]:
            reply = (message.meta or {}).get("reply") or {"text": message.content}
            turns[-1]["expect"] = _expectations(reply, seen_leads, in_handoff)
            in_handoff = in_handoff or "handoff" in (reply.get("actions") or [])
    if not turns:
        raise CaptureError(f"conversation {conversation_id} has no user messages")
    engines = {turn.get("expect", {}).get("engine") for turn in turns}
    last = messages[-1].created_at
    case: dict[str, Any] = {
        "id": f"captured-{conversation_id}",
        "title": f"Captured conversation {conversation_id}",
        "tags": ["captured"],
        "mode": "model" if "model" in engines else "offline",
        "today": last.date().isoformat(),
        "channel": "api" if user is not None and user.identity == "api" else "telegram",
        "user_id": f"captured-{conversation_id}",
        "first_name": None,
        "captured_from": conversation_id,
        "turns": turns,
    }
    Case.model_validate(case)  # what we write must load
    header = (
        f"# Captured from conversation {conversation_id}; phones, e-mails and names are masked.\n"
        "# Tighten the expectations (tools, text_contains, ...), add a tag, then record the cassette:\n"
        f"#   python -m evals run --record --case captured-{conversation_id}\n"
    )
    cassette = "cassette: []\n" if case["mode"] == "model" else ""
    return header + dump_yaml(case) + cassette
