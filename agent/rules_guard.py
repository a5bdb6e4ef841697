"""The brand rules applied: what a reply, a button or a document may not say, and the prompt section
that tells the model the same rules.

``RulesGuard.check`` runs on every reply (model or offline): a reply naming the sister brand becomes the
approved relationship answer; one naming an obsolete or internal term, or a withdrawn price, becomes the
rule's correct text (or «уточнит менеджер»); a sentence that promises what the school does not promise, or
computes a number the school does not let the bot compute, is cut and the rule's safe sentence is said
instead. ``violations`` is the plain finder that button labels, cards and scripts/validate_catalog.py use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from agent.brand_rules import BlockedTerms, BrandRules, GuardedPhrase, HandoffTopic, RuleKind, normalize, term_pattern
from agent.intents import Handoff
from agent.personal_data import PHONE_RE, digits_of

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_SPACE = "[ \u00a0\u202f]?"


def _compile(terms: list[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    return re.compile("|".join(f"(?:{term_pattern(term)})" for term in terms), re.IGNORECASE)


def _amount_pattern(amount: int) -> str:
    """«18 800», «18800», «18 800» (no-break spaces): the number as any text writes it, never part of a
    larger one (so 10 000 is not found inside 100 000)."""
    grouped = f"{amount:,}".split(",")
    # «(?<![\d.,])» placed after the leading digits (the lookbehind spans them): the same matches, but
    # the pattern starts with a literal, which the engine finds by fast search (~60x faster on a document).
    first = grouped[0]
    return first + rf"(?<![\d.,]{first})" + "".join(_SPACE + group for group in grouped[1:]) + r"(?![\d]|[.,]\d)"


def _phone_key(text: str) -> str:
    return digits_of(text)[-10:]


@dataclass(frozen=True)
class RuleHit:
    kind: RuleKind
    rule: str  # the rule's id (or "sister_brand", or the amount)
    matched: str  # the text that matched

    def __str__(self) -> str:
        return f"{self.kind}:{self.rule} «{self.matched}»"


@dataclass
class RulesCheck:
    text: str
    hits: list[RuleHit] = field(default_factory=list)
    replaced: bool = False  # the whole reply was replaced by the rule's text


class RulesGuard:
    """One brand's rules, compiled once."""

    def __init__(self, rules: BrandRules) -> None:
        self.rules = rules
        sister = rules.sister_brand
        self._sister = _compile(sister.identity_terms()) if sister else None
        self._sister_products = _compile(sister.product_terms()) if sister else None
        self._sister_phones = {_phone_key(phone) for phone in sister.phones} if sister else set()
        self._blocked = [(kind, item, _compile(item.terms)) for kind, items in
                         (("obsolete", rules.obsolete), ("internal", rules.internal)) for item in items]
        self._amounts = [
            (item.amount, re.compile(_amount_pattern(item.amount))) for item in rules.withdrawn_amounts
        ]
        self._phrases = [(kind, item, _compile(item.patterns), _compile(item.unless)) for kind, items in
                         (("never_promise", rules.never_promise), ("never_compute", rules.never_compute)) for item in items]
        self._topics = [(topic, _compile([*topic.keywords, *topic.patterns]), _compile(topic.unless))
                        for topic in rules.handoff_topics]

    # ---------------------------------------------------------------- finding

    def _sister_hits(self, text: str) -> list[RuleHit]:
        hits = [RuleHit("sister_brand", "sister_brand", m.group(0)) for m in self._sister.finditer(text)] if self._sister else []
        if self._sister_products is not None:
            hits += [RuleHit("sister_brand", "sister_brand_product", m.group(0)) for m in self._sister_products.finditer(text)]
        hits += [
            RuleHit("sister_brand", "sister_brand_phone", m.group(0))
            for m in PHONE_RE.finditer(text)
            if _phone_key(m.group(0)) in self._sister_phones
        ]
        return hits

    def _blocked_hits(self, text: str) -> list[tuple[RuleHit, BlockedTerms]]:
        return [
            (RuleHit(kind, item.id, m.group(0)), item)  # type: ignore[arg-type]
            for kind, item, pattern in self._blocked
            if pattern is not None
            for m in pattern.finditer(text)
        ]

    def _amount_hits(self, text: str) -> list[RuleHit]:
        return [RuleHit("withdrawn_amount", str(amount), m.group(0)) for amount, pattern in self._amounts for m in pattern.finditer(text)]

    def correction(self, text: str) -> str | None:
        """What is true instead of the obsolete things a client's message names («Занятия проходят в МТС
        Линк?» → the current platform), or None. Internal terms are never answered this way."""
        flat = normalize(text)
        found = [item.instead for kind, item, pattern in self._blocked
                 if kind == "obsolete" and pattern is not None and pattern.search(flat)]
        return " ".join(dict.fromkeys(found)) or None

    def violations(self, text: str) -> list[RuleHit]:
        """Every term the brand must never show a client: the sister brand, obsolete and internal terms,
        withdrawn amounts. (Promises and computations are judged per reply sentence by ``check``.)"""
        flat = normalize(text)
        return [*self._sister_hits(flat), *(hit for hit, _ in self._blocked_hits(flat)), *self._amount_hits(flat)]

    def handoff_topics(self, text: str) -> list[HandoffTopic]:
        """Every topic of the client's message that goes to a manager, in the rules file's order."""
        flat = normalize(text)
        return [
            topic for topic, pattern, unless in self._topics
            if pattern is not None and pattern.search(flat) and not (unless is not None and unless.search(flat))
        ]

    def handoff_topic(self, text: str) -> HandoffTopic | None:
        """The first topic the client's message is about that always goes to a manager, or None."""
        return next(iter(self.handoff_topics(text)), None)

    def handoff(self, text: str) -> Handoff | None:
        """The message's handoff topic for the conversation flow: an urgent one wins over one that only
        needs a manager's details (a refund demand that also names Лобня is a refund demand)."""
        found = sorted(self.handoff_topics(text), key=lambda topic: not topic.urgent)
        if not found:
            return None
        topic = found[0]
        return Handoff(id=topic.id, reply=" ".join(topic.reply.split()), urgent=topic.urgent)

    # ---------------------------------------------------------------- enforcing

    def check(self, text: str) -> RulesCheck:
        flat = normalize(text)
        if hits := self._sister_hits(flat):
            sister = self.rules.sister_brand
            assert sister is not None
            only_products = all(hit.rule == "sister_brand_product" for hit in hits)
            answer = sister.products_answer if only_products and sister.products_answer else sister.relationship_answer
            return RulesCheck(answer, hits, replaced=True)
        if blocked := self._blocked_hits(flat):
            insteads = list(dict.fromkeys(item.instead for _, item in blocked))
            return RulesCheck(" ".join(insteads), [hit for hit, _ in blocked], replaced=True)
        if hits := self._amount_hits(flat):
            return RulesCheck(self.rules.manager_reply, hits, replaced=True)
        return self._cut_sentences(text)

    def _cut_sentences(self, text: str) -> RulesCheck:
        result = RulesCheck(text)
        insteads: list[str] = []
        lines = []
        for line in text.split("\n"):
            kept = []
            for sentence in _SENTENCE_END.split(line):
                phrase_hits = self._phrase_hits(sentence)
                if not phrase_hits:
                    kept.append(sentence)
                    continue
                for hit, item in phrase_hits:
                    result.hits.append(hit)
                    if item.instead not in insteads:
                        insteads.append(item.instead)
            lines.append(" ".join(kept))
        if result.hits:
            body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
            result.text = "\n\n".join(part for part in (body, " ".join(insteads)) if part)
        return result

    def _phrase_hits(self, sentence: str) -> list[tuple[RuleHit, GuardedPhrase]]:
        flat = normalize(sentence)
        found = []
        for kind, item, pattern, unless in self._phrases:
            match = pattern.search(flat) if pattern is not None else None
            if match and not (unless is not None and unless.search(flat)):
                found.append((RuleHit(kind, item.id, match.group(0)), item))  # type: ignore[arg-type]
        return found

    # ---------------------------------------------------------------- telling the model

    @cached_property
    def prompt_section(self) -> str:
        """The rules as instructions (Russian, like the rest of the prompt); empty for a brand without rules."""
        rules = self.rules
        lines: list[str] = []
        if rules.sister_brand:
            sister = rules.sister_brand
            names = ", ".join(dict.fromkeys([*sister.names, *sister.sites, *sister.products, *sister.partners]))
            lines.append(
                f"- Никогда не называйте другую организацию, её сайты, контакты и продукты ({names}) и не сравнивайте с ней. "
                f"Если спрашивают о связи с ней, ответьте только: «{sister.relationship_answer}»"
            )
        if urgent := "; ".join(topic.title for topic in rules.handoff_topics if topic.urgent):
            lines.append(
                "- Сразу передавайте менеджеру (handoff_to_manager), с сочувствием, без продажи, без сбора данных и без обещаний: "
                f"{urgent}."
            )
        if details := "; ".join(topic.title for topic in rules.handoff_topics if not topic.urgent):
            lines.append(f"- Подробности сообщает только менеджер — ответьте тем, что известно, и предложите менеджера: {details}.")
        for item in rules.never_compute:
            lines.append(f"- Не вычисляйте: {item.description}. Вместо этого: «{item.instead}»")
        for item in rules.never_promise:
            lines.append(f"- Не обещайте: {item.description}. Вместо этого: «{item.instead}»")
        for item in rules.blocked_lists():
            if item.show_in_prompt:
                shown = ", ".join(term for term in item.terms if not term.startswith("re:"))
                lines.append(f"- Не упоминайте ({item.reason}): {shown}. Верно: «{item.instead}»")
            else:
                lines.append(f"- Не сообщайте клиентам: {item.reason}.")
        if rules.withdrawn_amounts:
            amounts = ", ".join(f"{item.amount:,}".replace(",", " ") for item in rules.withdrawn_amounts)
            lines.append(f"- Эти суммы устарели или отозваны, не называйте их: {amounts}.")
        return "## Правила школы (обязательны)\n" + "\n".join(lines) + "\n\n" if lines else ""
