"""Telegram update payloads shaped like the real ones (only the fields the bot reads, plus ids)."""

from __future__ import annotations

import time
from typing import Any


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"Parent{user_id}", "username": f"user{user_id}", "language_code": "ru"}


def _chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": f"Parent{user_id}"}


def message(update_id: int, user_id: int, text: str, *, message_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": message_id or update_id,
        "date": int(time.time()),
        "chat": _chat(user_id),
        "from": _user(user_id),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": update_id, "message": body}


def callback(update_id: int, user_id: int, data: str, *, message_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "from": _user(user_id),
            "chat_instance": f"ci{user_id}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": _chat(user_id),
                "from": {"id": 4242, "is_bot": True, "first_name": "Test bot"},
                "text": "Выберите вариант",
                "reply_markup": {"inline_keyboard": [[{"text": "Вариант", "callback_data": data}]]},
            },
        },
    }


def _with(update_id: int, user_id: int, **content: Any) -> dict[str, Any]:
    body = {"message_id": update_id, "date": int(time.time()), "chat": _chat(user_id), "from": _user(user_id)}
    return {"update_id": update_id, "message": {**body, **content}}


def contact(update_id: int, user_id: int, phone: str, *, owner_id: int | None = None) -> dict[str, Any]:
    shared = {"phone_number": phone, "first_name": f"Parent{user_id}", "user_id": owner_id or user_id}
    return _with(update_id, user_id, contact=shared)


def photo(update_id: int, user_id: int) -> dict[str, Any]:
    return _with(update_id, user_id, photo=[{"file_id": "f1", "file_unique_id": "u1", "width": 10, "height": 10}])


def document(update_id: int, user_id: int) -> dict[str, Any]:
    return _with(update_id, user_id, document={"file_id": "d1", "file_unique_id": "du1", "file_name": "справка.pdf"},
                 caption="Справка из школы")


def voice(update_id: int, user_id: int) -> dict[str, Any]:
    return _with(update_id, user_id, voice={"file_id": "v1", "file_unique_id": "vu1", "duration": 3})


def staff(
    update_id: int,
    chat_id: int,
    manager_id: int,
    text: str | None = None,
    *,
    thread: int | None = None,
    reply_to: int | None = None,
    is_bot: bool = False,
    **content: Any,
) -> dict[str, Any]:
    """A message in the staff group: in a forum topic (``thread``) and/or replying to ``reply_to``."""
    chat = {"id": chat_id, "type": "supergroup" if thread else "group", "title": "Менеджеры"}
    sender = {"id": manager_id, "is_bot": is_bot, "first_name": f"Manager{manager_id}", "last_name": "Sales"}
    body: dict[str, Any] = {"message_id": 10_000 + update_id, "date": int(time.time()), "chat": chat, "from": sender}
    if thread:
        body |= {"message_thread_id": thread, "is_topic_message": True}
    if reply_to:
        body["reply_to_message"] = {"message_id": reply_to, "date": int(time.time()), "chat": chat,
                                    "from": {"id": 4242, "is_bot": True, "first_name": "Test bot"}, "text": "…"}
    if text is not None:
        body["text"] = text
        if text.startswith("/"):
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": {**body, **content}}


def staff_button(update_id: int, chat_id: int, manager_id: int, data: str, *, thread: int | None, message_id: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id, "date": int(time.time()),
        "chat": {"id": chat_id, "type": "supergroup" if thread else "group", "title": "Менеджеры"},
        "from": {"id": 4242, "is_bot": True, "first_name": "Test bot"}, "text": "Нужен менеджер",
        "reply_markup": {"inline_keyboard": [[{"text": "Вернуть боту", "callback_data": data}]]},
    }
    if thread:
        message |= {"message_thread_id": thread, "is_topic_message": True}
    return {"update_id": update_id, "callback_query": {
        "id": f"cq{update_id}", "from": {"id": manager_id, "is_bot": False, "first_name": f"Manager{manager_id}"},
        "chat_instance": "staff", "data": data, "message": message}}


def staff_edit(update_id: int, of_update: int, chat_id: int, manager_id: int, text: str | None = None, *,
               thread: int | None = None, **content: Any) -> dict[str, Any]:
    """A manager editing the staff message that update ``of_update`` brought (same message_id)."""
    edited = staff(of_update, chat_id, manager_id, text, thread=thread, **content)["message"]
    return {"update_id": update_id, "edited_message": {**edited, "edit_date": int(time.time())}}


GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}


def anonymous_admin(update_id: int, chat_id: int, text: str, *, thread: int | None = None, signature: str | None = None) -> dict[str, Any]:
    """A message an anonymous admin of the group posts: Telegram names GroupAnonymousBot as ``from`` and
    the group itself as ``sender_chat`` (``author_signature``: the admin's custom title, if any)."""
    update = staff(update_id, chat_id, 0, text, thread=thread)
    message = update["message"]
    message["from"] = GROUP_ANONYMOUS_BOT
    message["sender_chat"] = {"id": chat_id, "type": "supergroup", "title": message["chat"]["title"]}
    if signature:
        message["author_signature"] = signature
    return update


def edited(update_id: int, user_id: int, text: str, *, message_id: int) -> dict[str, Any]:
    """A client editing their message ``message_id`` in the private chat."""
    body = message(update_id, user_id, text, message_id=message_id)["message"]
    return {"update_id": update_id, "edited_message": {**body, "edit_date": int(time.time())}}
