"""What both CRM clients share: one httpx client, and turning a failed call into a CrmError.

Errors are classified by transport exception, status code and payload fields, never by the text of a
message, so a translated or reworded error page can't flip a permanent failure into a retry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from agent.errors import CrmError

MAX_DETAIL = 200


def make_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    # No redirects: a CRM that redirects an API call is misconfigured, and following it could send the
    # token to another host.
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), follow_redirects=False)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transport_error(provider: str, action: str, error: httpx.HTTPError) -> CrmError:
    if isinstance(error, httpx.TimeoutException):
        return CrmError(f"{provider} {action}: timed out", retryable=True, kind="timeout")
    return CrmError(f"{provider} {action}: {type(error).__name__}", retryable=True, kind="network")


def status_error(provider: str, action: str, response: httpx.Response, detail: str = "") -> CrmError:
    """Map a non-success status: 429 and 5xx can pass, 401/403 and other 4xx won't change by retrying."""
    status = response.status_code
    text = f"{provider} {action}: HTTP {status}" + (f" {detail[:MAX_DETAIL]}" if detail else "")
    if status == 429:
        return CrmError(
            text, retryable=True, status=status, kind="rate_limited", retry_after=retry_after_seconds(response)
        )
    if status >= 500:
        return CrmError(text, retryable=True, status=status, kind="server", retry_after=retry_after_seconds(response))
    if status in (401, 403):
        return CrmError(text, retryable=False, status=status, kind="auth")
    return CrmError(text, retryable=False, status=status, kind="rejected")


def json_body(provider: str, action: str, response: httpx.Response) -> Any:
    """The decoded answer; a proxy's HTML page or a truncated body is an error of its own kind.

    It is retryable: a garbage answer is usually a gateway hiccup, and a permanently wrong URL is
    caught by the start-up check, which reports the same kind.
    """
    try:
        return response.json()
    except ValueError:
        raise CrmError(
            f"{provider} {action}: the answer is not JSON (HTTP {response.status_code})",
            retryable=True,
            status=response.status_code,
            kind="invalid_json",
        ) from None


def unexpected(provider: str, action: str, what: str) -> CrmError:
    return CrmError(f"{provider} {action}: unexpected answer ({what})", retryable=True, kind="unexpected")
