"""Prometheus metrics of one process: connections, events published and delivered, delivery lag,
slow-consumer closes, and HTTP request latency.

One :class:`Metrics` (with its own registry) per app, so several apps in one process (tests) do
not share counters. Hot paths touch pre-bound children only: a delivered batch costs one counter
increment and one histogram observation, not one per event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

TRANSPORTS = ("sse", "ws")
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series are noise
        self.registry = CollectorRegistry()
        connections = Gauge("dropsync_connections", "Open stream connections", ["transport"], registry=self.registry)
        delivered = Counter(
            "dropsync_events_delivered", "Events sent to stream connections", ["transport"], registry=self.registry
        )
        lag = Histogram(
            "dropsync_delivery_lag_seconds",
            "From an event's commit to its send on a connection (the oldest event of each batch; live events only)",
            ["transport"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        closes = Counter(
            "dropsync_slow_consumer_closes",
            "Connections closed because they fell too far behind (queue full or send timeout)",
            ["transport"],
            registry=self.registry,
        )
        self.connections = {transport: connections.labels(transport) for transport in TRANSPORTS}
        self.delivered = {transport: delivered.labels(transport) for transport in TRANSPORTS}
        self.lag = {transport: lag.labels(transport) for transport in TRANSPORTS}
        self.slow_consumer_closes = {transport: closes.labels(transport) for transport in TRANSPORTS}
        self.published = Counter(
            "dropsync_events_published",
            "Events recorded and handed to the broker by this process",
            registry=self.registry,
        )
        self.requests = Histogram(
            "dropsync_http_request_duration_seconds",
            "HTTP request latency (streams excluded)",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)
