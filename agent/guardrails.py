"""Input caps, personal-data masking and reply checks (prices, links, prompt leaks).

The model provider is a cross-border processor under 152-ФЗ, so phones and e-mails the user types are
masked in everything sent to it; the tools read the stored values instead. Replies may name a ₽ amount
only when the catalog or the knowledge base has it, and may link only where agent/link_policy.py allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent.link_policy import LinkPolicy

# Re-exported: the masking helpers lived here before agent/personal_data.py held the one pattern set.
from agent.personal_data import (  # noqa: F401
    EMAIL_RE,
    PHONE_RE,
    digits_of,
    find_phone,
    mask_email,
    mask_personal_data,
    mask_phone,
)
from agent.text_safety import skeleton

MAX_INPUT_CHARS = 4000
TRUNCATION_NOTE = (
    "Ваше сообщение очень длинное, поэтому я прочитал только первые 4000 символов. "
    "Если важное осталось в конце, пришлите его, пожалуйста, отдельным сообщением."
)
ASK_MANAGER = "уточню у менеджера"
REFUSAL = (
    "Я не могу рассказать о своих внутренних настройках, но с радостью помогу подобрать курс "
    "или отвечу на вопросы об обучении."
)

# 36 900 ₽, 36900 руб., 1 000 000 рублей, 450 р. (the number may use normal or narrow no-break spaces)
AMOUNT_RE = re.compile(
    r"(?<![\d])(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)?[ \u00a0\u202f]*"
    r"(?:₽|руб(?:\.|лей|ля|ль)?|р\.)",
    re.IGNORECASE,
)
PLACEHOLDER_RE = re.compile(r"\{[a-z_]+\}")
# Text that only a tool schema or our prompt files contain.
SCHEMA_MARKERS = ("additionalProperties", '"parameters"', "function_call_output", "json_schema")


def cap_input(text: str) -> tuple[str, bool]:
    """Cut over-long input; the caller adds TRUNCATION_NOTE to the reply."""
    if len(text) <= MAX_INPUT_CHARS:
        return text, False
    return text[:MAX_INPUT_CHARS], True


def host_allowed(url: str, domains: tuple[str, ...]) -> bool:
    target = url if "://" in url else "https://" + url
    host = (urlsplit(target).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _amount_value(number: str) -> int:
    return int(re.sub(r"\D", "", number))


@dataclass
class ReplyCheck:
    text: str
    removed_amounts: list[int] = field(default_factory=list)
    removed_links: list[str] = field(default_factory=list)
    leaked: bool = False


def check_reply(
    text: str,
    *,
    known_amounts: AbstractSet[int],
    brand_domain: str,
    secret_lines: list[str] | None = None,
    telegram_names: Iterable[str] = (),
) -> ReplyCheck:
    """Remove unknown ₽ amounts and links the link policy refuses (agent/link_policy.py: the brand's
    domain over https, t.me and @mentions of ``telegram_names`` only); replace a reply that leaks our
    prompt or schemas (compared by skeleton, so look-alike letters don't hide a quote)."""
    if _leaks(text, secret_lines or []):
        return ReplyCheck(text=REFUSAL, leaked=True)
    result = ReplyCheck(text=text)

    def amount(match: re.Match[str]) -> str:
        value = _amount_value(match.group(1))
        if value in known_amounts:
            return match.group(0)
        result.removed_amounts.append(value)
        return f"(точную сумму {ASK_MANAGER})"

    checked = AMOUNT_RE.sub(amount, text)
    links = LinkPolicy.of(brand_domain, telegram_names).apply(checked)
    result.removed_links = links.removed
    checked = links.text
    result.text = re.sub(r"[ \t]{2,}", " ", checked).strip()
    return result


def quotes_prompt(text: str, heads: list[str]) -> bool:
    """True when ``text`` repeats one of the prompt's stretches (``Prompts.quote_heads``)."""
    flat = skeleton(text)
    return any(skeleton(head) in flat for head in heads)


def _leaks(text: str, secret_lines: list[str]) -> bool:
    flat = skeleton(text)
    if any(skeleton(marker) in flat for marker in SCHEMA_MARKERS):
        return True
    return any(skeleton(line) in flat for line in secret_lines)


def secret_lines_of(*documents: str, min_length: int = 60) -> list[str]:
    """Long lines of the prompt files: a reply quoting one verbatim is revealing the prompt.

    A line is cut at its placeholders ({brand_name}, ...): the model quotes the rendered text, so only
    the literal stretches between placeholders can be matched."""
    lines: list[str] = []
    for document in documents:
        for line in document.splitlines():
            for stretch in PLACEHOLDER_RE.split(line):
                flat = " ".join(stretch.strip(" -*#>()").split())
                if len(flat) >= min_length:
                    lines.append(flat[:min_length])
    return lines
