"""From a stored lead to what a CRM receives: LeadPayload, the comment text and the dialogue summary."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.storage.models import Lead, Message
from agent.personal_data import redact_contacts  # a phone typed into the chat reaches the CRM once, in its field
from agent.ports import LeadPayload

SUMMARY_MESSAGES = 12
SUMMARY_LINE_CHARS = 300
SUMMARY_MAX_CHARS = 2000
_SPEAKERS = {"user": "Клиент", "assistant": "Ассистент"}


def conversation_summary(messages: Sequence[Message]) -> str:
    """The last turns of the dialogue as «Клиент: …» / «Ассистент: …» lines, without phones or e-mails."""
    lines: list[str] = []
    for message in list(messages)[-SUMMARY_MESSAGES:]:
        speaker = _SPEAKERS.get(message.role)
        text = " ".join(message.content.split())
        if speaker is None or not text:
            continue
        if len(text) > SUMMARY_LINE_CHARS:
            text = text[: SUMMARY_LINE_CHARS - 1] + "…"
        lines.append(f"{speaker}: {redact_contacts(text)}")
    summary = "\n".join(lines)
    # Keep the end of the dialogue: the latest turns say what the client finally asked for.
    return summary[-SUMMARY_MAX_CHARS:]


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _grade(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def lead_payload(lead: Lead, messages: Sequence[Message], *, known_ids: dict[str, str] | None = None) -> LeadPayload:
    profile = lead.profile or {}
    if lead.id is None:
        raise ValueError("the lead must be stored before it is pushed")
    return LeadPayload(
        lead_id=lead.id,
        brand=lead.brand,
        phone=lead.phone,
        name=lead.name,
        source=lead.source,
        channel=lead.channel,
        grade=_grade(profile.get("grade")),
        goal=_text(profile.get("goal")),
        subject=_text(profile.get("subject")),
        format=_text(profile.get("format")),
        program_ids=list(lead.program_ids or []),
        summary=conversation_summary(messages),
        is_test=lead.is_test,
        known_ids=dict(known_ids or {}),
    )


def lead_title(lead: LeadPayload) -> str:
    """The deal name in the CRM; also how a retry recognises a lead it created before."""
    prefix = "ТЕСТ: " if lead.is_test else ""
    return f"{prefix}Заявка #{lead.lead_id} из чат-бота ({lead.brand})"


def lead_details(lead: LeadPayload) -> str:
    """Qualification answers for a manager, one per line."""
    lines = [lead_title(lead)]
    fields = (
        ("Класс", lead.grade),
        ("Цель", lead.goal),
        ("Предмет", lead.subject),
        ("Формат", lead.format),
        ("Программы", ", ".join(lead.program_ids)),
        ("Источник", lead.source),
        ("Канал", lead.channel),
    )
    lines += [f"{label}: {value}" for label, value in fields if value]
    return "\n".join(lines)


def lead_comment(lead: LeadPayload) -> str:
    comment = lead_details(lead)
    if lead.summary:
        comment += "\n\nДиалог:\n" + lead.summary
    return comment
