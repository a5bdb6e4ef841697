"""The school's rules for what the assistant may say, as data: catalog/<brand>.rules.yaml beside the catalog.

The schema rejects unknown keys (a typo in a rule name must not silently switch a rule off) and compiles
every pattern at load time, so a broken regex is a content error, not a crash mid-conversation.

Terms are written as people read them. A plain term matches case-insensitively at word boundaries, with
«ё» read as «е», any run of spaces or hyphens between its words, and a Russian ending on each word
(«Скорняжный» also finds «Скорняжном», «Фотон» finds «Фотона», «Старая улица» finds «Старой улице»). A term starting with ``re:`` is a raw
regular expression, matched case-insensitively against the text with «ё» replaced by «е».
Phones are compared by their last ten digits, however they are written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from agent.yaml_load import safe_load

RULES_SUFFIX = ".rules.yaml"
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"
REGEX_PREFIX = "re:"

# Russian endings dropped from a term's last word before any ending is allowed back (keeps the stem).
_ENDING_LETTERS = "аеиоуыэюяйь"
_MAX_ENDING = 3
_MIN_STEM = 4
_SEPARATORS = r"[\s\-‐–]*"
_YO = str.maketrans({"ё": "е", "Ё": "Е", "\u00a0": " ", "\u202f": " "})


def normalize(text: str) -> str:
    """The text the term patterns run on: same length as the input (positions stay valid), «ё» as «е»."""
    return text.translate(_YO)


def _inflected(word: str) -> str:
    """A word with a Russian ending allowed: the stem (the word minus up to two final vowels, at least four
    letters) and up to three more letters. Short words and words ending in a non-letter stay exact."""
    if not (word[-1:].isalpha() and len(word) >= _MIN_STEM):
        return re.escape(word)
    stem = word
    while len(stem) > _MIN_STEM and stem[-1].lower() in _ENDING_LETTERS and len(word) - len(stem) < 2:
        stem = stem[:-1]
    return rf"{re.escape(stem)}\w{{0,{_MAX_ENDING}}}"


def term_pattern(term: str) -> str:
    """The regular expression of one rules-file term (see the module docstring)."""
    if term.startswith(REGEX_PREFIX):
        return normalize(term[len(REGEX_PREFIX) :])
    words = normalize(term).split()
    body = _SEPARATORS.join(_inflected(word) for word in words)
    end = r"(?!\w)" if words[-1][-1:].isalnum() else ""
    if words[0][:1].isalnum() or words[0][:1] == "_":
        # No word character before the term. Written after its first character (a literal: re.escape
        # leaves letters, digits and «_» alone), so the lookbehind spans that character too: the same
        # match as «(?<!\w)» in front, but the engine no longer tries the lookbehind at every position
        # of the text first (content checks at start-up ran ~2.5x faster).
        return f"{body[0]}(?<!\\w.){body[1:]}{end}"
    return f"{body}{end}"


def _valid_term(term: str) -> str:
    term = term.strip()
    if len(term) < 2:
        raise ValueError("a term needs at least two characters")
    if not term.startswith(REGEX_PREFIX):
        # A plain term's pattern is escaped text in a fixed frame: it always compiles (and the guard
        # compiles it anyway). Compiling each one here too was most of reading the rules at start-up.
        return term
    try:
        re.compile(term_pattern(term))
    except re.error as error:
        raise ValueError(f"{term!r} is not a valid pattern: {error}") from None
    return term


def _valid_phone(phone: str) -> str:
    if len(re.sub(r"\D", "", phone)) < 10:
        raise ValueError(f"{phone!r} has fewer than 10 digits")
    return phone


Term = Annotated[str, AfterValidator(_valid_term)]
Phone = Annotated[str, AfterValidator(_valid_phone)]
RuleId = Annotated[str, Field(pattern=RULE_ID_PATTERN)]
ClientText = Annotated[str, Field(min_length=10, max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SisterBrand(_Strict):
    """Another organisation a reply of this brand must never name (F166–F169 for kmipt)."""

    names: list[Term] = Field(min_length=1)
    sites: list[Term] = Field(default_factory=list)
    emails: list[Term] = Field(default_factory=list)
    handles: list[Term] = Field(default_factory=list)
    phones: list[Phone] = Field(default_factory=list)
    products: list[Term] = Field(default_factory=list)
    partners: list[Term] = Field(default_factory=list)
    # The one approved answer when a client asks how the two are related.
    relationship_answer: ClientText
    # What a reply that offered one of the sister brand's products (or its partners) becomes.
    products_answer: ClientText | None = None

    def identity_terms(self) -> list[str]:
        return [*self.names, *self.sites, *self.emails, *self.handles]

    def product_terms(self) -> list[str]:
        return [*self.products, *self.partners]


class HandoffTopic(_Strict):
    """A topic that always goes to a manager: the inbound message matches ``patterns`` or ``keywords``
    and none of ``unless`` (e.g. a refund question asked before paying is not urgent)."""

    id: RuleId
    title: str = Field(min_length=3)  # what the staff notice and the prompt call it
    urgent: bool = True  # urgent: no selling, no data collection, the handoff holds on later messages
    keywords: list[Term] = Field(default_factory=list)
    patterns: list[Term] = Field(default_factory=list)
    unless: list[Term] = Field(default_factory=list)
    reply: ClientText


class GuardedPhrase(_Strict):
    """Something a reply must not do (promise, compute): a sentence matching ``patterns`` and none of
    ``unless`` (an honest «гарантировать не можем») is removed and ``instead`` is said once in its place."""

    id: RuleId
    description: str = Field(min_length=3)  # for the prompt and the logs
    patterns: list[Term] = Field(min_length=1)
    unless: list[Term] = Field(default_factory=list)
    instead: ClientText


class BlockedTerms(_Strict):
    """Words that must not reach a client (an obsolete address or platform, an internal fact): a reply
    naming one is replaced by ``instead`` (the current fact, or «уточнит менеджер»)."""

    id: RuleId
    reason: str = Field(min_length=3)
    terms: list[Term] = Field(min_length=1)
    instead: ClientText
    show_in_prompt: bool = True  # False for internal values the model must not even see


class WithdrawnAmount(_Strict):
    amount: int = Field(gt=0)
    reason: str = Field(min_length=3)


class BrandRules(_Strict):
    brand: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,31}$")
    # What a blocked reply becomes when no rule has a better text: an honest «уточнит менеджер».
    manager_reply: ClientText = "Это лучше уточнить у менеджера — он ответит точно. Позвать менеджера в этот чат?"
    sister_brand: SisterBrand | None = None
    handoff_topics: list[HandoffTopic] = Field(default_factory=list)
    never_compute: list[GuardedPhrase] = Field(default_factory=list)
    never_promise: list[GuardedPhrase] = Field(default_factory=list)
    obsolete: list[BlockedTerms] = Field(default_factory=list)
    internal: list[BlockedTerms] = Field(default_factory=list)
    withdrawn_amounts: list[WithdrawnAmount] = Field(default_factory=list)

    def blocked_lists(self) -> list[BlockedTerms]:
        return [*self.obsolete, *self.internal]


def empty_rules(brand: str) -> BrandRules:
    return BrandRules(brand=brand)


class RulesFileError(ValueError):
    """A rules file that can't be used; ``problems`` are (field path, message) pairs."""

    def __init__(self, file: str, problems: list[tuple[str | None, str]]) -> None:
        self.file = file
        self.problems = problems
        shown = "; ".join(f"{where}: {message}" if where else message for where, message in problems[:5])
        super().__init__(f"{file}: {shown}")


def rules_path(catalog_dir: Path, brand: str) -> Path:
    return catalog_dir / f"{brand}{RULES_SUFFIX}"


def read_rules_file(path: Path, brand: str) -> BrandRules:
    """The rules of ``brand`` from ``path``; ``RulesFileError`` names every problem."""
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise RulesFileError(path.name, [(None, f"cannot read YAML: {error}")]) from None
    try:
        rules = BrandRules.model_validate(raw)
    except ValidationError as error:
        problems = [(".".join(str(part) for part in item["loc"]) or None, item["msg"]) for item in error.errors()]
        raise RulesFileError(path.name, problems) from None
    if rules.brand != brand:
        raise RulesFileError(path.name, [("brand", f"{rules.brand!r} must match the file name {brand!r}")])
    return rules


def load_brand_rules(catalog_dir: Path, brand: str) -> BrandRules:
    """The rules file beside the brand's catalog, or empty rules when the brand has none."""
    path = rules_path(catalog_dir, brand)
    return read_rules_file(path, brand) if path.is_file() else empty_rules(brand)


RuleKind = Literal["sister_brand", "obsolete", "internal", "withdrawn_amount", "never_promise", "never_compute"]
