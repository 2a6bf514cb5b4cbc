"""Municipality handlers: capacity published by a municipality."""

from __future__ import annotations

import logging

from contracts.messages import CapacityPublishedV1, UnitKind
from services.kit.service import Context, HandlerFunc, Rejected
from services.municipality.reference import Register
from services.municipality.store import Capacity

log = logging.getLogger("municipality")


def make_capacity_handler(register: Register) -> HandlerFunc:
    async def on_capacity(ctx: Context) -> None:
        data: CapacityPublishedV1 = ctx.data
        municipality = register.get(data.kommunenummer)
        if municipality is None:
            raise Rejected(f"kommunenummer: {data.kommunenummer!r} is not a municipality in "
                           f"{register.source}")  # fmt: skip
        expected = f"kommune-{data.kommunenummer}"
        if ctx.sender.kind == UnitKind.MUNICIPALITY and ctx.sender.id != expected:
            raise Rejected(f"kommunenummer: unit {ctx.sender.id!r} may only publish for itself "
                           f"({expected!r})")  # fmt: skip
        if data.free_places > data.children:
            raise Rejected(f"free_places: {data.free_places} exceeds the {data.children} "
                           "children the council decided to settle")  # fmt: skip
        row = await ctx.session.get(Capacity, (data.kommunenummer, data.year))
        if row is None:
            row = Capacity(kommunenummer=data.kommunenummer, year=data.year)
            ctx.session.add(row)
        row.bufetat_region = municipality.bufetat_region
        row.children, row.measures, row.free_places = data.children, data.measures, data.free_places
        log.info(
            "capacity recorded",
            extra={
                "kommunenummer": data.kommunenummer,
                "year": data.year,
                "free_places": data.free_places,
            },
        )

    return on_capacity
