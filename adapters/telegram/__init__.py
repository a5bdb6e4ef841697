"""Telegram adapter: aiogram 3 bot over one durable update queue (polling and webhook modes)."""
