"""Prometheus counters of push delivery, by service (``webpush``, ``expo``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

SERVICES = ("webpush", "expo")


class PushMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()

        def counter(name: str, description: str) -> dict[str, Counter]:
            family = Counter(name, description, ["service"], registry=registry)
            return {service: family.labels(service) for service in SERVICES}

        self.sent = counter("dropsync_push_sent", "Notifications a push service accepted")
        self.retried = counter("dropsync_push_retried", "Attempts that failed and will be retried (429, 5xx, timeouts)")
        self.failed = counter(
            "dropsync_push_failed",
            "Notifications given up on: refused by the service, or still failing after the retry window or their TTL",
        )
        self.pruned = counter(
            "dropsync_push_pruned",
            "Subscriptions deleted because the service said the device is gone (404/410, DeviceNotRegistered)",
        )
