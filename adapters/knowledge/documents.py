"""Knowledge documents: knowledge/<brand>/<slug>.md with YAML front matter (title, sources, checked_at),
and their sections (the body split at its Markdown headings: the units the local index ranks and returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from agent.catalog import ContentIssue
from agent.catalog_schema import FactRef
from agent.yaml_load import safe_load

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

FRONT_MATTER_FENCE = "---"


@cache
def _markdown() -> MarkdownIt:
    # Only the index splits documents into sections: its parser is not needed to start.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


class KeptContradiction(BaseModel):
    """A row of the content-contradictions list deliberately kept as written, and why."""

    model_config = ConfigDict(extra="forbid")

    row: int = Field(ge=1)
    reason: str = Field(min_length=10)


class NonPriceAmount(BaseModel):
    """A ₽ amount the document states that is not a price (a tax limit), so no card has to carry it."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0)
    reason: str = Field(min_length=5)


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1)
    # Pages the text comes from and/or numbered facts of the school's fact sheet («F63»).
    sources: list[HttpUrl | FactRef] = Field(min_length=1)
    checked_at: date | None = None
    kept: list[KeptContradiction] = Field(default_factory=list)
    non_price_amounts: list[NonPriceAmount] = Field(default_factory=list)


@dataclass(frozen=True)
class KnowledgeDocument:
    brand: str
    slug: str  # the file name without .md: the document's id everywhere (passages, vector store)
    title: str
    sources: tuple[str, ...]
    checked_at: date | None
    body: str
    path: Path
    non_price_amounts: frozenset[int] = frozenset()

    @property
    def source_url(self) -> str | None:
        """The first source that is a page (fact numbers are for the people who maintain the content)."""
        return next((source for source in self.sources if "://" in source), None)

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(source for source in self.sources if "://" not in source)


@dataclass(frozen=True)
class Section:
    heading: str  # "" for the text before the first heading
    text: str  # the section's Markdown without its heading line

    @property
    def markdown(self) -> str:
        return f"## {self.heading}\n{self.text}".strip() if self.heading else self.text


def split_sections(body: str) -> list[Section]:
    """The body cut at every Markdown heading (a parser, so a «#» inside a list or code is no heading).
    Empty sections are dropped; a body without headings is one section."""
    lines = body.splitlines()
    tokens = _markdown().parse(body)
    cuts = [
        (token.map[0], token.map[1], tokens[index + 1].content.strip())
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]
    sections = []
    bounds = [(0, 0, ""), *cuts, (len(lines), len(lines), "")]
    for (_, text_start, heading), (next_start, _, _) in zip(bounds, bounds[1:], strict=False):
        text = "\n".join(lines[text_start:next_start]).strip()
        if text or heading:
            sections.append(Section(heading=heading, text=text))
    return sections


class DocumentError(ValueError):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


def _split_front_matter(text: str) -> tuple[object, str]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
        raise DocumentError(None, "no front matter: the file must start with a '---' block (title, sources)")
    for index in range(1, len(lines)):
        if lines[index].strip() == FRONT_MATTER_FENCE:
            try:
                meta = safe_load("\n".join(lines[1:index]))
            except yaml.YAMLError as error:
                raise DocumentError(None, f"front matter is not valid YAML: {error}") from None
            return meta, "\n".join(lines[index + 1 :]).strip()
    raise DocumentError(None, "front matter is not closed by '---'")


def read_document(brand: str, path: Path) -> KnowledgeDocument:
    meta, body = _split_front_matter(path.read_text(encoding="utf-8"))
    try:
        front = FrontMatter.model_validate(meta if isinstance(meta, dict) else {})
    except ValidationError as error:
        first = error.errors()[0]
        raise DocumentError(str(first["loc"][0]) if first["loc"] else None, first["msg"]) from None
    if not body:
        raise DocumentError("body", "the document has no text")
    return KnowledgeDocument(
        brand=brand,
        slug=path.stem,
        title=front.title.strip(),
        sources=tuple(str(url) for url in front.sources),
        checked_at=front.checked_at,
        body=body,
        path=path,
        non_price_amounts=frozenset(item.amount for item in front.non_price_amounts),
    )


def read_brand_documents(knowledge_root: Path, brand: str) -> tuple[list[KnowledgeDocument], list[ContentIssue]]:
    """Every readable document of a brand, and an issue for each file that can't be used."""
    folder = knowledge_root / brand
    documents: list[KnowledgeDocument] = []
    issues: list[ContentIssue] = []
    file_prefix = f"{knowledge_root.name}/{brand}"
    if not folder.is_dir():
        return [], [ContentIssue("warning", file_prefix, None, None, "no knowledge base folder for this brand")]
    for path in sorted(folder.glob("*.md")):
        try:
            documents.append(read_document(brand, path))
        except (OSError, UnicodeDecodeError) as error:
            issues.append(ContentIssue("error", f"{file_prefix}/{path.name}", path.stem, None, f"cannot read: {error}"))
        except DocumentError as error:
            issues.append(ContentIssue("error", f"{file_prefix}/{path.name}", path.stem, error.field, str(error)))
    if not documents and not issues:
        issues.append(ContentIssue("warning", file_prefix, None, None, "the knowledge base folder has no documents"))
    return documents, issues


def brand_folders(knowledge_root: Path) -> list[str]:
    if not knowledge_root.is_dir():
        return []
    return sorted(p.name for p in knowledge_root.iterdir() if p.is_dir() and not p.name.startswith("."))
