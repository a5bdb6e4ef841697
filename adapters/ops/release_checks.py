"""Post-deploy checks for scripts/release_smoke.py: every check is a named PASS/FAIL with a detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Options:
    strict_runtime: bool = False
    require_render_persistent: bool = False
    require_webhook_mode: bool = False
    telegram_token: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    webhook_path: str = "/telegram/webhook"  # TELEGRAM_WEBHOOK_PATH of the script's environment


async def _get(client: httpx.AsyncClient, path: str, **kwargs: Any) -> tuple[httpx.Response | None, str]:
    try:
        return await client.get(path, **kwargs), ""
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def run_checks(base_url: str, options: Options, *, timeout: float = 10.0,
                     transport: httpx.AsyncBaseTransport | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport) as client:
        for name, path, wants_json in (("health", "/api/health", True), ("landing", "/", False), ("miniapp", "/app", False)):
            response, error = await _get(client, path)
            if response is None:
                results.append(CheckResult(name, False, f"GET {path}: {error}"))
                continue
            ok = response.status_code == 200 and (not wants_json or _json(response).get("ok") is True)
            results.append(CheckResult(name, ok, f"GET {path} → {response.status_code}"))

        response, error = await _get(client, "/api/runtime/diagnostics")
        diagnostics = _json(response) if response is not None else {}
        runtime = diagnostics.get("runtime") if isinstance(diagnostics.get("runtime"), dict) else {}
        results.append(
            CheckResult("diagnostics", bool(runtime) and diagnostics.get("ok") is True,
                        f"GET /api/runtime/diagnostics → {response.status_code if response is not None else error}")
        )
        brand = runtime.get("brand_default", "kmipt")
        response, error = await _get(client, "/api/catalog/search", params={"brand": brand, "grade": 11, "goal": "ege"})
        body = _json(response) if response is not None else {}
        items = body.get("items") if isinstance(body.get("items"), list) else []
        results.append(CheckResult("catalog_search", bool(items) and body.get("ok") is True,
                                   f"{len(items)} programs for grade 11 ЕГЭ" if response is not None else error))

        if options.strict_runtime:
            warnings = diagnostics.get("warnings") or []
            results.append(CheckResult("strict_runtime", not warnings and bool(runtime),
                                       "no warnings" if not warnings else "; ".join(map(str, warnings))))
        if options.require_render_persistent:
            results.append(_render_persistent(runtime))
        if options.require_webhook_mode:
            results.extend(await _webhook(runtime, base_url, options, timeout, transport))
    return results


def _render_persistent(runtime: dict[str, Any]) -> CheckResult:
    problems = []
    if runtime.get("running_on_render") is not True:
        problems.append("running_on_render is not true")
    if runtime.get("persistent_data_root") in (None, "/tmp"):
        problems.append(f"persistent_data_root is {runtime.get('persistent_data_root')}")
    for flag in ("database_on_persistent_storage", "vector_meta_on_persistent_storage"):
        if runtime.get(flag) is not True:
            problems.append(f"{flag} is not true")
    return CheckResult("render_persistent", not problems, "; ".join(problems) or "disk mounted and used")


async def _webhook(runtime: dict[str, Any], base_url: str, options: Options, timeout: float,
                   transport: httpx.AsyncBaseTransport | None) -> list[CheckResult]:
    mode = runtime.get("telegram_mode")
    results = [CheckResult("webhook_mode", mode == "webhook", f"telegram_mode={mode}")]
    if not options.telegram_token:
        return results
    url = f"{options.telegram_api_base_url.rstrip('/')}/bot{options.telegram_token}/getWebhookInfo"
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            info = _json(await client.get(url)).get("result") or {}
    except httpx.HTTPError as error:
        # The URL holds the token: report only the error type.
        return [*results, CheckResult("webhook_info", False, f"getWebhookInfo failed: {type(error).__name__}")]
    expected = base_url.rstrip("/") + options.webhook_path  # the diagnostics never publish the path
    problems = []
    if info.get("url") != expected:
        problems.append(f"webhook url is {info.get('url') or 'empty'}, expected {expected}")
    if info.get("last_error_message"):
        problems.append(f"last error: {info['last_error_message']}")
    pending = info.get("pending_update_count", 0)
    return [*results, CheckResult("webhook_info", not problems, "; ".join(problems) or f"ok, {pending} pending")]
