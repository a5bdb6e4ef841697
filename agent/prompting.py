"""What the model is told: instructions (system prompt, sales tone, brand facts, date, profile) and
the recent transcript, with personal data masked and the size bounded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from datetime import date
from typing import Any

from agent.guardrails import secret_lines_of
from agent.personal_data import mask_personal_data, mask_phone
from agent.settings import Settings
from agent.state import Profile, StoredMessage

# About 3 characters per token in Russian: ~2500 tokens of history per turn.
TRANSCRIPT_MAX_CHARS = 7500
TRANSCRIPT_MAX_MESSAGES = 30  # the model's transcript: fetched and sent (then cut to TRANSCRIPT_MAX_CHARS)
QUOTE_HEAD_CHARS = 30


@dataclass(frozen=True)
class Prompts:
    system: str
    tone: str

    @cached_property
    def secret_lines(self) -> list[str]:
        return secret_lines_of(self.system, self.tone)

    @cached_property
    def quote_heads(self) -> list[str]:
        """Shorter stretches of the prompt: a live preview shows one sentence at a time, and the
        sentence that opens a quoted prompt is shorter than what the whole-reply check looks for."""
        return secret_lines_of(self.system, self.tone, min_length=QUOTE_HEAD_CHARS)


def load_prompts(settings: Settings) -> Prompts:
    folder = settings.project_path("prompts")
    # Settings already checked that SALES_TONE_PATH names an existing file.
    tone_path = settings.project_path(settings.sales_tone_path) if settings.sales_tone_path else folder / "sales_tone.md"
    return Prompts(
        system=(folder / "system.md").read_text(encoding="utf-8"), tone=tone_path.read_text(encoding="utf-8")
    )


def build_instructions(
    prompts: Prompts,
    *,
    brand_name: str,
    brand_domain: str,
    facts: list[str],
    manager_contact: str,
    today: date,
    profile: Profile,
    rules: str = "",
    consent_given: bool,
    lead_id: int | None = None,
    given: dict[str, Any] | None = None,
) -> str:
    """The turn's instructions. The lead and this message's contact parts are added only when there are
    any, so the model never asks again for what the user gave (and recorded dialogs stay comparable)."""
    known: dict[str, Any] = profile.model_dump(include={"grade", "goal", "subject", "format", "program_ids"}, exclude_none=True)
    if profile.name:
        known["name"] = profile.name
    if profile.phone:
        known["phone"] = mask_phone(profile.phone)
    known["consent_personal_data"] = consent_given
    if lead_id is not None:
        known["lead_created"] = lead_id
    extra = ""
    if given:
        extra = (
            f"\n## В этом сообщении пользователь дал\n{json.dumps(given, ensure_ascii=False)}\n"
            "Контакт, согласие и заявку бот оформляет сам в этом же ответе: не просите их повторить, "
            "не повторяйте номер и имя, ответьте только на вопрос из сообщения (если он есть).\n"
        )
    return (
        f"{_brand_part(prompts, brand_name, brand_domain, tuple(facts), manager_contact, rules)}"
        f"## Сегодня\n{today.isoformat()}\n\n"
        f"## Что известно о пользователе\n{json.dumps(known, ensure_ascii=False)}\n{extra}"
    )


@lru_cache(maxsize=64)
def _brand_part(
    prompts: Prompts, brand_name: str, brand_domain: str, facts: tuple[str, ...], manager_contact: str, rules: str
) -> str:
    """The instructions' part that is the same for every turn of a brand, built once. ``rules`` is the
    section rendered from the brand rules file (agent/rules_guard.py)."""
    system = prompts.system.replace("{brand_name}", brand_name).replace("{brand_domain}", brand_domain)
    facts_text = "\n".join(f"- {fact}" for fact in facts)
    return (
        f"{system}\n\n## Тон\n{prompts.tone}\n\n## О школе\n{facts_text}\n"
        f"- Связь с менеджером: {manager_contact}\n\n{rules}"
    )


def transcript_items(messages: list[StoredMessage], *, max_chars: int = TRANSCRIPT_MAX_CHARS) -> list[dict[str, Any]]:
    """Newest messages that fit the budget, oldest first, with phones and e-mails masked."""
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(messages[-TRANSCRIPT_MAX_MESSAGES:]):
        if message.role not in ("user", "assistant") or not message.content:
            continue
        content = mask_personal_data(message.content)
        if used + len(content) > max_chars and kept:
            break
        kept.append({"role": message.role, "content": content[:max_chars]})
        used += len(content)
    return list(reversed(kept))
