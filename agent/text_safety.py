"""Characters that must not reach storage, logs or a manager's screen.

NUL and the other control characters are never part of a real message (PostgreSQL refuses NUL in text
outright); bidirectional overrides and zero-width marks in a name can make «Иван» display as something
else in the admin, a CSV or the manager's card. The HTTP API refuses them with a reason
(adapters/http/request_checks.py); text that arrives from Telegram is cleaned here instead, because a
bot message cannot be answered with a 422.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# C0 controls except tab, LF and CR; DEL; the C1 range.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Bidi embeddings/overrides (U+202A–U+202E) and isolates (U+2066–U+2069), zero-width space, the
# left-to-right/right-to-left marks and the byte-order mark: they reorder or hide what a name shows.
INVISIBLE = re.compile(r"[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def strip_control(text: str) -> str:
    return CONTROL.sub("", text)


def clean_name(text: str) -> str:
    """A display name without control characters or reordering marks, spaces collapsed."""
    return " ".join(INVISIBLE.sub("", CONTROL.sub("", text)).split())


def plain_name(text: str | None) -> str | None:
    """``clean_name`` for an optional value: None stays None, a name of only noise becomes None."""
    return (clean_name(text) or None) if text else None


# Latin letters that look like Cyrillic ones (lowercase, after casefold): a prompt line quoted with a
# Latin «о» in it must still read as the same line.
_LOOKALIKES = str.maketrans("aceopxykmthb", "асеорхукмтнв")


@lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """``text`` reduced for comparison: NFKC (full-width forms), invisible marks dropped, casefolded,
    Latin look-alikes mapped to Cyrillic, «ё» as «е», whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text)
    folded = INVISIBLE.sub("", CONTROL.sub("", folded)).casefold().replace("ё", "е")
    return " ".join(folded.translate(_LOOKALIKES).split())
