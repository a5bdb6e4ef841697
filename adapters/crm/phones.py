"""Russian phone numbers as CRMs store them: we normalise to +7XXXXXXXXXX and search every variant."""

from __future__ import annotations

import re

from agent.errors import InvalidInput

_NON_DIGITS = re.compile(r"\D")


def normalise_phone(raw: str) -> str:
    """+7XXXXXXXXXX from +7…, 8…, 7… or ten digits, with any spaces, dashes or brackets."""
    digits = _NON_DIGITS.sub("", raw or "")
    if len(digits) == 10:
        digits = "7" + digits
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    raise InvalidInput("phone", "expected a Russian phone number like +79991234567")


def phone_variants(phone: str) -> list[str]:
    """The formats a contact may have been typed in by staff: +7…, 8…, 7…."""
    national = normalise_phone(phone)[2:]
    return [f"+7{national}", f"8{national}", f"7{national}"]
