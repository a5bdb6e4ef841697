"""The process's Prometheus registry and its counters and gauges.

Kept apart from the /metrics route (adapters/http/metrics.py) so that the composition root and the
CRM outbox count events without importing an HTTP router.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route template", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency by route template", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)
MODEL_ERRORS = Counter("model_errors_total", "Model calls that failed after retries", ["kind"], registry=REGISTRY)
CRM_PUSHES = Counter("crm_push_results_total", "CRM push attempts by outcome", ["provider", "outcome"], registry=REGISTRY)
TELEGRAM_UPDATES = Gauge("telegram_updates", "Telegram updates in the queue by state", ["state"], registry=REGISTRY)
TELEGRAM_LAG = Gauge("telegram_queue_lag_seconds", "Age of the oldest update waiting to be processed", registry=REGISTRY)
LEADS = Gauge("leads", "Leads by CRM delivery status", ["crm_status"], registry=REGISTRY)
MODEL_CALLS = Gauge("model_calls", "Model calls recorded (all time)", ["purpose"], registry=REGISTRY)
MODEL_TOKENS = Gauge("model_tokens", "Model tokens recorded (all time)", ["kind"], registry=REGISTRY)
