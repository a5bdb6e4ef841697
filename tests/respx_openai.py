"""respx for the openai SDK: openai 3.x sends through httpx2/httpcore2, which respx does not patch.

Importing this module registers a respx mocker for httpcore2's connection pools, so
`respx.mock(using=OPENAI_MOCKER, base_url=OPENAI_BASE)` intercepts the real SDK's requests at the HTTP
seam, exactly like respx's own httpcore mocker does for httpx.
"""

from __future__ import annotations

import httpcore2
from respx.mocks import HTTPCoreMocker

OPENAI_BASE = "https://api.openai.com/v1"
OPENAI_MOCKER = "httpcore2"


class HTTPCore2Mocker(HTTPCoreMocker):
    name = OPENAI_MOCKER
    targets = [
        "httpcore2._sync.connection.HTTPConnection",
        "httpcore2._sync.connection_pool.ConnectionPool",
        "httpcore2._sync.http_proxy.HTTPProxy",
        "httpcore2._async.connection.AsyncHTTPConnection",
        "httpcore2._async.connection_pool.AsyncConnectionPool",
        "httpcore2._async.http_proxy.AsyncHTTPProxy",
    ]

    @classmethod
    def from_sync_httpx_response(cls, httpx_response, target, **kwargs):  # type: ignore[no-untyped-def]
        return httpcore2.Response(
            status=httpx_response.status_code,
            headers=httpx_response.headers.raw,
            content=httpx_response.stream,
            extensions=httpx_response.extensions,
        )
