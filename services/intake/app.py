"""Wiring for the intake service."""

from services.intake import handlers
from services.intake.store import Base
from services.kit.service import Service

service = Service("intake", Base.metadata)
service.handles("no.ema.intake.arrival.v1", durable="intake-arrivals")(handlers.on_arrival)
