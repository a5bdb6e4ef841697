"""The runbook's smoke-test commands: /kbtest <question> (anyone: it shows what the public knowledge
base answers) and /leadtest <phone> (admins only: it writes to the CRM)."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram import filters
from adapters.telegram.turns import TelegramContext

log = logging.getLogger(__name__)

PASSAGE_PREVIEW = 600
KBTEST_USAGE = "Напишите вопрос после команды, например: /kbtest Какие условия оплаты?"
LEADTEST_USAGE = "Укажите телефон после команды, например: /leadtest +79991234567"
ADMIN_ONLY_TEXT = "Извините, эта команда доступна только администраторам."


async def kbtest(message: Message, command: CommandObject, tg: TelegramContext) -> None:
    question = (command.args or "").strip()
    if not question:
        await message.answer(hd.quote(KBTEST_USAGE))
        return
    result = await tg.knowledge.search(tg.settings.brand_default, question, limit=3)
    if not result.passages:
        await message.answer(hd.quote("В базе знаний ничего не нашлось по этому вопросу."))
        return
    header = "Нашлось в базе знаний:" if result.relevant else "Точного ответа нет; ближайшие фрагменты:"
    parts = [hd.bold(hd.quote(header))]
    for number, passage in enumerate(result.passages, 1):
        text = passage.text if len(passage.text) <= PASSAGE_PREVIEW else passage.text[:PASSAGE_PREVIEW] + "…"
        source = f"\nИсточник: {hd.quote(passage.source_url)}" if passage.source_url else ""
        parts.append(f"{number}. {hd.bold(hd.quote(passage.title))} ({passage.score:.2f})\n{hd.quote(text)}{source}")
    answer = "\n\n".join(parts)
    # Three previews of 600 characters stay far below Telegram's 4096.
    await message.answer(answer)


async def leadtest(message: Message, command: CommandObject, tg: TelegramContext) -> None:
    if not tg.is_admin(message.from_user):
        await message.answer(hd.quote(ADMIN_ONLY_TEXT))
        return
    phone = (command.args or "").strip()
    if not phone:
        await message.answer(hd.quote(LEADTEST_USAGE))
        return
    result = await tg.lead_test(phone)
    await message.answer(hd.quote(("✅ " if result.ok else "⚠️ ") + result.message))


def build() -> Router:
    """A fresh router: aiogram attaches a router to one dispatcher only."""
    router = Router(name="admin")
    # Commands only: plain text skips these routers after one cheap check.
    router.message.filter(filters.private_chat, filters.looks_like_command)
    router.message.register(kbtest, Command("kbtest"))
    router.message.register(leadtest, Command("leadtest"))
    return router
