"""Serves the built Mini Apps (webapp/dist) at /app and /admin/miniapp, or a page saying a build is needed.

One multi-page Vite build: dist/index.html is the user app, dist/admin/index.html the admin app;
both load their hashed assets from /app/assets/.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

from adapters.http.dependencies import SettingsDep

router = APIRouter()

# Hashed assets never change under one name; the HTML entry must be re-read on every open.
ASSET_CACHE = "public, max-age=31536000, immutable"
HTML_CACHE = "no-cache"

_BUILD_REQUIRED = """<!doctype html><html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Нужна сборка</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem">
<h1>Мини-приложение ещё не собрано</h1>
<p>Build required: run <code>cd webapp &amp;&amp; npm install &amp;&amp; npm run build</code>
(or <code>make run</code>), or set <code>WEBAPP_DIST_PATH</code> to the built folder.</p></body></html>"""


# The Mini Apps open inside Telegram: native clients use a web view, Telegram Web (web.telegram.org, its
# /k and /a versions) frames the page. Any other site framing it is clickjacking.
CSP = (
    "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}

USER_ENTRY = "index.html"
ADMIN_ENTRY = "admin/index.html"


def _serve(dist: Path, relative: str, entry: str = USER_ENTRY) -> Response:
    index = dist / entry
    if not index.is_file():
        return HTMLResponse(_BUILD_REQUIRED, status_code=503, headers={"Cache-Control": "no-store", **PAGE_HEADERS})
    if relative:
        candidate = (dist / relative).resolve()
        if not candidate.is_relative_to(dist.resolve()):
            raise HTTPException(404)
        if candidate.is_file():
            if candidate.suffix == ".html":
                return FileResponse(candidate, headers={"Cache-Control": HTML_CACHE, **PAGE_HEADERS})
            return FileResponse(candidate, headers={"Cache-Control": ASSET_CACHE})
        if "." in Path(relative).name:  # a missing asset, not a client-side route
            raise HTTPException(404)
    return FileResponse(index, headers={"Cache-Control": HTML_CACHE, **PAGE_HEADERS})


@router.get("/app", include_in_schema=False)
@router.get("/app/{relative:path}", include_in_schema=False)
async def user_app(settings: SettingsDep, relative: str = "") -> Response:
    return _serve(settings.webapp_dist, relative)


@router.get("/admin/miniapp", include_in_schema=False)
@router.get("/admin/miniapp/", include_in_schema=False)
async def admin_app(settings: SettingsDep) -> Response:
    """The page itself holds no data: its API calls need Basic auth or an allowed admin's initData."""
    return _serve(settings.webapp_dist, "", ADMIN_ENTRY)
