"""The manager relay over Telegram (README "For the sales team"): staff.py moves the messages,
router.py listens to the staff chat, cards.py draws the handoff card, idle.py returns idle chats."""
