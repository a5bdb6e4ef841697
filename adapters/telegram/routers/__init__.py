"""Routers per concern; the order here is the order aiogram tries them (the catch-all goes last)."""

from __future__ import annotations

from aiogram import Router

from adapters.telegram.routers import admin, commands, conversation, forget


def all_routers() -> list[Router]:
    return [commands.build(), admin.build(), forget.build(), conversation.build()]
