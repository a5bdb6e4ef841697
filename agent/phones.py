"""Russian phone numbers: the one rule for leads, /leadtest, CRM look-ups and the Mini App's form.

The Mini App checks the same rule (webapp/src/phone.ts); tests/data/phone_rule.json is the table both
test suites read, so the two cannot drift apart.
"""

from __future__ import annotations

import re

from agent.errors import InvalidInput

_NON_DIGITS = re.compile(r"\D")
# After +7: mobile numbers start with 9, city numbers with 3, 4 or 8.
_FIRST_DIGITS = "3489"


def normalize_phone(raw: str) -> str:
    """+7XXXXXXXXXX from the ways Russians type a mobile or landline number; InvalidInput otherwise."""
    digits = _NON_DIGITS.sub("", raw or "")
    if len(digits) == 10:
        digits = "7" + digits
    elif len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if len(digits) != 11 or digits[0] != "7" or digits[1] not in _FIRST_DIGITS:
        raise InvalidInput("phone", "expected a Russian phone number like +7 999 123-45-67")
    return "+" + digits


def phone_variants(phone: str) -> list[str]:
    """The formats staff may have typed a contact's phone in, for CRM searches: +7…, 8…, 7…."""
    national = normalize_phone(phone)[2:]
    return [f"+7{national}", f"8{national}", f"7{national}"]
