"""What a reply may say depends on where it is read. Bot commands (/manager, /forget) and «кнопкой ниже»
(a reply keyboard) exist only in the Telegram chat; the Mini App chat and HTTP integrations get the
same meaning in words that work there. Our own texts are chosen per channel; texts we do not write
(knowledge-base passages, the model's answer) are rewritten by ``for_channel``."""

from __future__ import annotations

import re

from agent.types import Channel

# {hours}: the brand's working hours from its catalog block (brand.working_hours).
_HANDOFF = {
    Channel.telegram: "Передаю разговор менеджеру — он ответит здесь в рабочее время ({hours}). Пока менеджер ведёт разговор, я помолчу.",
    Channel.miniapp: (
        "Передаю разговор менеджеру — он ответит вам в чате с ботом в Telegram в рабочее время ({hours}). "
        "Пока менеджер ведёт разговор, я помолчу."
    ),
    Channel.api: "Передаю разговор менеджеру — он свяжется с вами в рабочее время ({hours}). Пока менеджер ведёт разговор, я помолчу.",
}
_HUMAN_MODE_NOTICE = {
    Channel.telegram: "Ваше сообщение передано менеджеру, он ответит здесь. Пока я молчу, чтобы не мешать.",
    Channel.miniapp: "Ваше сообщение передано менеджеру, он ответит в чате с ботом в Telegram. Пока я молчу, чтобы не мешать.",
    Channel.api: "Ваше сообщение передано менеджеру, он свяжется с вами. Пока я молчу, чтобы не мешать.",
}
_WITHDRAW = {
    Channel.telegram: "командой /forget",
    Channel.miniapp: "— достаточно написать в чат «удалите мои данные»",
    Channel.api: "— достаточно написать в чат «удалите мои данные»",
}
_ASK_PHONE = {
    Channel.telegram: "Спасибо! Отправьте, пожалуйста, номер телефона кнопкой ниже или напишите его сообщением.",
    Channel.miniapp: "Спасибо! Напишите, пожалуйста, номер телефона сообщением или нажмите «Поделиться номером».",
    Channel.api: "Спасибо! Напишите, пожалуйста, номер телефона сообщением.",
}


def handoff_text(channel: Channel, working_hours: str) -> str:
    return _HANDOFF[channel].format(hours=working_hours)


def human_mode_notice(channel: Channel) -> str:
    return _HUMAN_MODE_NOTICE[channel]


def consent_withdrawal(channel: Channel) -> str:
    return _WITHDRAW[channel]


def ask_phone(channel: Channel) -> str:
    return _ASK_PHONE[channel]


# Bot-only phrasing in texts we do not write, and what it means outside the bot chat.
_OUTSIDE_TELEGRAM = [
    (re.compile(r"(?:отправьте|пришлите|напишите)(?: в этом чате)? команду \**/manager\**", re.I), "нажмите «Позвать менеджера»"),
    (re.compile(r"команд[аыуой]+ \**/manager\**(?: в чате)?", re.I), "кнопка «Позвать менеджера»"),
    (re.compile(r"(?:отправьте|пришлите|напишите)(?: в этом чате)? команду \**/forget\**", re.I), "напишите в чат «удалите мои данные»"),
    (re.compile(r"команд[аыуой]+ \**/forget\**", re.I), "сообщением «удалите мои данные»"),
    (re.compile(r"\**/(?:manager|forget|start|app)\**"), "менеджеру школы"),
    (re.compile(r"Позвать менеджера в этот чат\?"), "Позвать менеджера?"),
]


def for_channel(text: str, channel: Channel) -> str:
    """The text with bot-only instructions reworded for a reader outside the Telegram chat."""
    if channel is Channel.telegram:
        return text
    for pattern, replacement in _OUTSIDE_TELEGRAM:
        text = pattern.sub(lambda match, new=replacement: _same_case(match.group(0), new), text)
    return text


def _same_case(old: str, new: str) -> str:
    """«Отправьте команду …» at a sentence start becomes «Нажмите …», not «нажмите …»."""
    return new[:1].upper() + new[1:] if old[:1].isupper() else new
