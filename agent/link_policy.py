"""What a reply may link to: one policy for the final text, every streamed sentence and every button.

A prompt-injected model can write links the guardrails must not let through. Allowed:

- URLs with a scheme only when it is https (http is upgraded) and the host, parsed as a browser parses it,
  is the brand's domain or a subdomain of it. A backslash counts as a slash (``https://evil.ru\\@kmipt.ru``
  opens evil.ru) and any userinfo (``user@host``) refuses the URL; other schemes (ftp, tg) are refused.
- Telegram links (t.me, telegram.me) and @mentions only to the school's listed channels (the catalog's
  ``manager_contact``) and the bot's own username.
- A bare reference (``kmipt.ru/courses``, ``t.me/unpk_mipt``) only to the same places; any other bare
  domain (``evil-pay.ru/kmipt``) is removed, as is an e-mail address outside the brand's domain.

Whatever is refused is cut out of the text; the reply around it stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TELEGRAM_HOSTS = frozenset({"t.me", "telegram.me", "www.t.me", "www.telegram.me"})
NAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"
# Suffixes that look like a top-level domain but end file and library names in ordinary text.
_NOT_DOMAINS = frozenset({"js", "ts", "py", "txt", "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "jpg", "jpeg", "png", "md", "exe", "zip", "csv", "html", "php"})
_STOP = r"[^\s<>\"'«»]"
CANDIDATE_RE = re.compile(
    rf"(?P<email>\b[A-Za-z0-9._%+-]+@(?P<email_domain>[A-Za-z0-9.-]+\.[A-Za-z]{{2,}})\b)"
    rf"|(?P<url>\b[A-Za-z][A-Za-z0-9+.-]{{1,15}}://{_STOP}+)"
    rf"|(?P<bare>(?<![\w@./\\-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    rf"(?P<tld>[A-Za-z]{{2,24}}|xn--[A-Za-z0-9-]+|рф)\b(?::\d{{1,5}})?(?:[/?#]{_STOP}*)?)"
    rf"|(?P<mention>(?<![\w@.])@(?P<name>{NAME})(?![\w@]))"
)
_TRAILING = ".,;:!?)»"


def telegram_names_in(*texts: str) -> set[str]:
    """@names and t.me/<name> links a school lists (e.g. the catalog's manager_contact), lowercased."""
    names: set[str] = set()
    for text in texts:
        names.update(n.lower() for n in re.findall(rf"(?<![\w@.])@({NAME})", text))
        names.update(n.lower() for n in re.findall(rf"(?:t|telegram)\.me/({NAME})", text, re.IGNORECASE))
    return names


@dataclass(frozen=True)
class LinkPolicy:
    domain: str
    telegram_names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, domain: str, names: Iterable[str]) -> LinkPolicy:
        return cls(domain.lower(), frozenset(n.lower().lstrip("@") for n in names if n))

    def apply(self, text: str) -> LinkCheck:
        """The text with every refused link, mention or address cut out (and http upgraded)."""
        result = LinkCheck(text)
        result.text = CANDIDATE_RE.sub(lambda m: self._one(m, result), text)
        return result

    def allows(self, text: str) -> bool:
        """True when ``text`` (a button label, a URL) carries nothing the policy would cut."""
        return not self.apply(text).removed

    def _one(self, match: re.Match[str], result: LinkCheck) -> str:
        whole = match.group(0)
        if match.group("email"):
            return whole if self._brand_host(match.group("email_domain").lower()) else self._cut(whole, "", result)
        if match.group("mention"):
            return whole if match.group("name").lower() in self.telegram_names else self._cut(whole, "", result)
        core = whole.rstrip(_TRAILING)
        tail = whole[len(core):]
        if match.group("url"):
            kept = self._url(core)
        else:
            if match.group("tld").lower() in _NOT_DOMAINS:
                return whole
            kept = core if self._reference(core) else None
        return kept + tail if kept is not None else self._cut(core, tail, result)

    def _url(self, url: str) -> str | None:
        """The URL to keep (https), or None. Parsed the way a browser does for http(s)."""
        normalised = url.replace("\\", "/")
        try:
            parts = urlsplit(normalised)
            port = parts.port  # noqa: F841  (raises on a malformed port)
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or "%" in parts.netloc:
            return None
        if not self._allowed(parts.hostname or "", parts.path):
            return None
        return "https" + normalised[len(parts.scheme):] if parts.scheme.lower() == "http" else url

    def _reference(self, bare: str) -> bool:
        parts = urlsplit("https://" + bare.replace("\\", "/"))
        return "@" not in parts.netloc and self._allowed(parts.hostname or "", parts.path)

    def _allowed(self, host: str, path: str) -> bool:
        host = host.lower().rstrip(".")
        if host in TELEGRAM_HOSTS:
            segments = [s for s in path.split("/") if s]
            if segments and segments[0].lower() == "s":  # t.me/s/<channel>: the channel's web preview
                segments = segments[1:]
            return bool(segments) and segments[0].lower() in self.telegram_names
        return self._brand_host(host)

    def _brand_host(self, host: str) -> bool:
        return host == self.domain or host.endswith("." + self.domain)

    @staticmethod
    def _cut(core: str, tail: str, result: LinkCheck) -> str:
        result.removed.append(core)
        return tail


@dataclass
class LinkCheck:
    text: str
    removed: list[str] = field(default_factory=list)
