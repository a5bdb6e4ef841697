"""The core's small exception hierarchy; adapters map it to HTTP statuses and polite bot text."""


class AgentError(Exception):
    """Base class for errors the core raises on purpose."""


class InvalidInput(AgentError):
    """The user's input can't be used (bad phone, unknown brand, empty message)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ConsentRequired(AgentError):
    """Personal data can't be stored without recorded consent (152-ФЗ)."""


class UnknownBrand(InvalidInput):
    def __init__(self, brand: str) -> None:
        super().__init__("brand", f"unknown brand {brand!r}")


class NotFound(AgentError):
    pass


class ModelUnavailable(AgentError):
    """The model failed after retries; the service answers with the offline policy."""


class CrmError(AgentError):
    """A CRM call failed. ``retryable`` tells the outbox whether trying again can help.

    ``kind`` names the failure for logs and the admin view (timeout, network, rate_limited, server,
    auth, rejected, invalid_json, unexpected, read_only); ``retry_after`` is the CRM's own hint in
    seconds (a 429's Retry-After) and ``crm_ids`` what a partly finished push already created.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        kind: str = "error",
        retry_after: float | None = None,
        crm_ids: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        self.crm_ids = crm_ids or {}
