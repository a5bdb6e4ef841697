"""Public commands: /start, /help, /app, /adminapp, /privacy, /manager."""

from __future__ import annotations

import re
from pathlib import Path

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import BotCommand, Message, Update
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram import filters, keyboards
from adapters.telegram.rendering import split_text
from adapters.telegram.turns import TelegramContext, inbound_for, run_turn


START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MANAGER_REASON = "Пользователь попросил менеджера (/manager)"

COMMANDS = [
    BotCommand(command="start", description="Начать подбор курса"),
    BotCommand(command="app", description="Открыть мини-приложение"),
    BotCommand(command="manager", description="Связаться с менеджером"),
    BotCommand(command="privacy", description="Согласие и политика обработки данных"),
    BotCommand(command="forget", description="Удалить мои данные"),
    BotCommand(command="kbtest", description="Проверить базу знаний: /kbtest вопрос"),
    BotCommand(command="help", description="Что умеет бот"),
]

HELP_TEXT = (
    "Я помогу подобрать курс, лагерь или подготовку к ЕГЭ, ОГЭ и олимпиадам для школьников 1–11 классов "
    "и отвечу на вопросы об обучении.\n\n"
    "Просто напишите вопрос или выберите вариант кнопкой.\n\n"
    "/start — начать подбор заново\n"
    "/app — мини-приложение с подбором и заявкой\n"
    "/manager — связаться с менеджером\n"
    "/privacy — согласие и политика обработки персональных данных\n"
    "/forget — удалить ваши данные и переписку\n"
    "/kbtest вопрос — показать, что нашлось в базе знаний"
)
NO_WEBAPP_TEXT = "Мини-приложение пока не подключено. Я помогу здесь, в чате: напишите, что вас интересует."
ADMIN_ONLY_TEXT = "Извините, эта команда доступна только администраторам."
NO_LEGAL_TEXT = "Текст пока не опубликован. Напишите /manager, и менеджер ответит на ваш вопрос."


def start_source(args: str | None) -> str | None:
    """The first-touch deep-link payload: ≤ 64 chars of A-Za-z0-9_-, anything else ignored."""
    return args if args and START_PAYLOAD.match(args) else None


async def start(message: Message, command: CommandObject, bot: Bot, event_update: Update, tg: TelegramContext) -> None:
    inbound = inbound_for(message.from_user, event_update.update_id, start=True, source=start_source(command.args))  # type: ignore[arg-type]
    await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handle(inbound))


async def help_command(message: Message) -> None:
    await message.answer(hd.quote(HELP_TEXT))


async def app_command(message: Message, tg: TelegramContext) -> None:
    url = tg.settings.user_webapp_url
    if not url:
        await message.answer(hd.quote(NO_WEBAPP_TEXT))
        return
    markup = keyboards.inline([keyboards.web_app_row(url, "Открыть подбор курса")])
    await message.answer("Подбор курса и заявка — в мини-приложении:", reply_markup=markup)


async def admin_app_command(message: Message, tg: TelegramContext) -> None:
    settings = tg.settings
    if not (settings.admin_miniapp_enabled and settings.admin_webapp_url and tg.is_admin(message.from_user)):
        await message.answer(hd.quote(ADMIN_ONLY_TEXT))
        return
    markup = keyboards.inline([keyboards.web_app_row(settings.admin_webapp_url, "Открыть админ-панель")])
    await message.answer("Админ-панель:", reply_markup=markup)


async def manager_command(message: Message, bot: Bot, event_update: Update, tg: TelegramContext) -> None:
    inbound = inbound_for(message.from_user, event_update.update_id, text="/manager")  # type: ignore[arg-type]
    await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handoff(inbound, MANAGER_REASON))


def legal_text(folder: Path, brand: str, name: str) -> str | None:
    """A legal document as plain text: front matter and HTML comments dropped, markdown marks removed."""
    path = folder / brand / f"{name}.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"^#+\s*", "", text, flags=re.M).replace("**", "")
    return text.strip()


async def privacy_command(message: Message, tg: TelegramContext) -> None:
    settings = tg.settings
    sent = False
    for name in ("consent", "privacy"):
        text = legal_text(settings.legal_path, settings.brand_default, name)
        for chunk in split_text(text or ""):
            await message.answer(hd.quote(chunk))
            sent = True
    if not sent:
        await message.answer(hd.quote(NO_LEGAL_TEXT))


def build() -> Router:
    """A fresh router: aiogram attaches a router to one dispatcher only."""
    router = Router(name="commands")
    # Commands only: plain text skips these routers after one cheap check.
    router.message.filter(filters.private_chat, filters.looks_like_command)
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.message.register(app_command, Command("app"))
    router.message.register(admin_app_command, Command("adminapp"))
    router.message.register(manager_command, Command("manager"))
    router.message.register(privacy_command, Command("privacy"))
    return router
