"""Prometheus metrics every service exposes on /metrics; values never carry personal data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.handled = Counter(
            "ema_messages_handled",
            "Messages applied (or seen before).",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.failed = Counter(
            "ema_messages_failed",
            "Handler attempts that failed.",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.dead = Counter(
            "ema_dead_letters",
            "Messages sent to the dead-letter stream.",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.seconds = Histogram(
            "ema_handle_seconds",
            "Time to apply one fetched batch.",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.lag = Gauge(
            "ema_consumer_lag",
            "Messages not yet delivered to the consumer.",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.outbox = Gauge(
            "ema_outbox_pending", "Outbox rows not yet published.", registry=self.registry
        )
        self.dead_depth = Gauge(
            "ema_dead_letter_depth",
            "Messages of this service in the dead-letter stream.",
            registry=self.registry,
        )
        self.info = Gauge(
            "ema_service_info", "Service identity.", ["service"], registry=self.registry
        ).labels(**labels)
        self.info.set(1)
        self.refreshers: list[Callable[[], Awaitable[None]]] = []

    async def render(self) -> bytes:
        for refresh in self.refreshers:
            await refresh()
        return generate_latest(self.registry)
