"""The lead outbox worker: pushes committed leads to the CRM until each one arrives or is refused.

Network errors, timeouts, 429 and 5xx are retried with exponential backoff (at least the CRM's
Retry-After), for as long as it takes: a lead is never dropped because the CRM was down. A 4xx that
won't change (bad token, rejected data, read-only mode) stops the retries and the reason is recorded on
the lead (leads.crm_status/crm_error) and the outbox row for the admin view.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from adapters.counters import CRM_PUSHES
from adapters.crm.payload import lead_payload
from adapters.retry import Backoff
from adapters.storage.models import CrmOutbox, utcnow
from adapters.storage.outbox import OutboxRepository
from adapters.storage.repositories import LeadRepository, MessageRepository
from agent.errors import CrmError, InvalidInput
from agent.ports import CRM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxPolicy:
    poll_seconds: float = 2.0
    # One row per claim: a claimed row's lease must not run out while it waits behind others, and a
    # crash leaves only the row that was being pushed to wait for its lease.
    batch_size: int = 1
    # CRM_RETRY_BASE_SECONDS / CRM_RETRY_MAX_SECONDS; the jitter spreads retries of many leads after an outage.
    retry: Backoff = Backoff(5.0, 1800.0, jitter=0.1)
    # Longer than the slowest push (a few requests, each bounded by CRM_TIMEOUT_SECONDS), so a live
    # worker's row is never taken over; a crashed worker's row is picked up after it.
    lease_seconds: float = 300.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        return max(self.retry.delay(attempts), min(retry_after or 0.0, self.retry.max_seconds))


class OutboxWorker:
    name = "crm-outbox"

    def __init__(
        self,
        crm: CRM,
        outbox: OutboxRepository,
        leads: LeadRepository,
        messages: MessageRepository,
        policy: OutboxPolicy | None = None,
    ) -> None:
        self.crm = crm
        self.outbox = outbox
        self.leads = leads
        self.messages = messages
        self.policy = policy or OutboxPolicy()

    async def run(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception:  # the database may be briefly away; the rows wait for the next round
                log.exception("crm outbox round failed")
                handled = 0
            if handled == 0:
                await asyncio.sleep(self.policy.poll_seconds)

    async def run_once(self) -> int:
        """Claim due rows and push them one by one; returns how many were claimed."""
        rows = await self.outbox.claim(
            self.crm.name, limit=self.policy.batch_size, lease_seconds=self.policy.lease_seconds
        )
        for row in rows:
            await self.deliver(row)
        return len(rows)

    async def deliver(self, row: CrmOutbox) -> None:
        lead = await self.leads.get(row.lead_id)
        if lead is None:  # deleted meanwhile (152-ФЗ withdrawal deletes the row too; this is a race)
            return
        history = await self.messages.recent(lead.conversation_id) if lead.conversation_id else []
        known_ids = {k: str(v) for k, v in (row.crm_ids or {}).items()}
        payload = lead_payload(lead, history, known_ids=known_ids)
        try:
            result = await self.crm.push_lead(payload)
        except CrmError as error:
            ids = {**known_ids, **error.crm_ids}
            if not error.retryable:
                log.warning("lead %s refused by %s: %s", lead.id, self.crm.name, error)
                await self.outbox.failed(row, f"{error.kind}: {error}", ids)
                self._count("failed")
                return
            delay = self.policy.delay(row.attempts, error.retry_after)
            log.info("lead %s: %s, retry %s in %.0fs", lead.id, error, row.attempts, delay)
            await self.outbox.retry_later(row, f"{error.kind}: {error}", utcnow() + timedelta(seconds=delay), ids)
            self._count("retry")
            return
        except InvalidInput as error:  # e.g. a phone no CRM would accept: retrying won't change it
            await self.outbox.failed(row, f"invalid_lead: {error}", known_ids)
            self._count("failed")
            return
        except Exception as error:  # a bug of ours must not stop the worker or lose the lead
            log.exception("lead %s: push to %s crashed", lead.id, self.crm.name)
            delay = self.policy.delay(row.attempts, None)
            await self.outbox.retry_later(
                row, f"internal: {type(error).__name__}", utcnow() + timedelta(seconds=delay), known_ids
            )
            self._count("retry")
            return
        crm_id = result.crm_ids.get("lead_id") or result.crm_ids.get("contact_id")
        await self.outbox.delivered(row, result.crm_ids, crm_id)
        self._count("delivered")
        log.info("lead %s delivered to %s (%s)", lead.id, self.crm.name, "created" if result.created else "updated")

    def _count(self, outcome: str) -> None:
        CRM_PUSHES.labels(self.crm.name, outcome).inc()
