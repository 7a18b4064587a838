"""Every Prometheus collector of the online role, in one place.

Names follow `shelfwise_serve_<thing>_<unit>`; `_total` only on counters (the client
library appends it to counter names); every collector has help text. Each app owns a
`CollectorRegistry`, never the process-global default, so tests can build many apps.

=========================================  =========  ===============================
name                                       type       labels
=========================================  =========  ===============================
shelfwise_serve_requests_total             counter    route, method, status
shelfwise_serve_request_duration_seconds   histogram  route
shelfwise_serve_fallbacks_total            counter    endpoint, reason, model_version
shelfwise_serve_empty_results_total        counter    endpoint, model_version
shelfwise_serve_model_info                 gauge      model_version, project, fingerprint
=========================================  =========  ===============================
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LABEL_ROUTE: Final = "route"
LABEL_METHOD: Final = "method"
LABEL_STATUS: Final = "status"
LABEL_ENDPOINT: Final = "endpoint"
LABEL_REASON: Final = "reason"
LABEL_MODEL_VERSION: Final = "model_version"
LABEL_PROJECT: Final = "project"
LABEL_FINGERPRINT: Final = "fingerprint"

UNMATCHED_ROUTE: Final = "unmatched"  # one label value for every unknown path

# Latency buckets in seconds: the service aims at tens of milliseconds.
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServeMetrics:
    """The collectors of one app, registered in their own registry."""

    def __init__(self) -> None:
        """Create the registry and every collector."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shelfwise_serve_requests",
            "HTTP requests answered, by route template, method and status code.",
            [LABEL_ROUTE, LABEL_METHOD, LABEL_STATUS],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "shelfwise_serve_request_duration_seconds",
            "Time from request start to the last response byte, by route template.",
            [LABEL_ROUTE],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "shelfwise_serve_fallbacks",
            "Responses (fully or partly) produced by a fallback, by endpoint and reason "
            "(unknown-user, no-history, no-neighbours, partial-fill, ...).",
            [LABEL_ENDPOINT, LABEL_REASON, LABEL_MODEL_VERSION],
            registry=self.registry,
        )
        self.empty_results = Counter(
            "shelfwise_serve_empty_results",
            "Responses with no items (e.g. a search that matched nothing), by endpoint.",
            [LABEL_ENDPOINT, LABEL_MODEL_VERSION],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "shelfwise_serve_model_info",
            "The model bundle being served: 1 for the loaded version, labels describe it.",
            [LABEL_MODEL_VERSION, LABEL_PROJECT, LABEL_FINGERPRINT],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(route, method, str(status)).inc()
        self.request_duration.labels(route).observe(seconds)

    def observe_fallback(self, endpoint: str, reason: str, model_version: str) -> None:
        """Count one response that used a fallback."""
        self.fallbacks.labels(endpoint, reason, model_version).inc()

    def observe_empty(self, endpoint: str, model_version: str) -> None:
        """Count one response without items."""
        self.empty_results.labels(endpoint, model_version).inc()

    def set_model(self, model_version: str, project: str, fingerprint: str) -> None:
        """Mark the served bundle (the previous one, if any, is cleared)."""
        self.model_info.clear()
        self.model_info.labels(model_version, project, fingerprint[:12]).set(1)

    def render(self) -> bytes:
        """The text exposition of every collector."""
        return generate_latest(self.registry)
