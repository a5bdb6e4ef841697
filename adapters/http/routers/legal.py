"""The consent text and privacy policy of a brand (legal/<brand>/*.md), as pages the Mini App links."""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from adapters.http.dependencies import SettingsDep
from agent.yaml_load import safe_load

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

router = APIRouter(tags=["mini app"])

DOCUMENTS = ("consent", "privacy")
_BRAND = re.compile(r"^[a-z0-9_-]{1,32}$")


@cache
def _markdown() -> MarkdownIt:
    """Our own content: raw HTML (the sample-text comment) passes through. Built at the first page (the
    parser is not needed to start)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """YAML front matter between leading `---` lines, and the Markdown body after it."""
    if text.startswith("---"):
        _, meta, body = text.split("---", 2)
        return (safe_load(meta) or {}), body
    return {}, text


def legal_file(legal_root: Path, brand: str, document: str) -> Path:
    if document not in DOCUMENTS or not _BRAND.match(brand):
        raise HTTPException(404, {"reason": "not_found", "detail": "no such document"})
    path = legal_root / brand / f"{document}.md"
    if not path.is_file():
        raise HTTPException(404, {"reason": "not_found", "detail": "no such document"})
    return path


@router.get("/api/legal/{brand}/{document}", response_class=HTMLResponse)
async def legal_document(brand: str, document: str, settings: SettingsDep) -> HTMLResponse:
    meta, body = split_front_matter(legal_file(settings.legal_path, brand, document).read_text("utf-8"))
    title = html.escape(str(meta.get("title", "")))
    version = html.escape(str(meta.get("version", "")))
    page = f"""<!doctype html><html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:1.5rem auto;padding:0 1rem;line-height:1.5}}
.version{{color:#777;font-size:.9em}}</style></head>
<body>{_markdown().render(body)}<p class="version">Редакция от {version}</p></body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "public, max-age=300", "X-Document-Version": version})
