"""The unit directory's listing on a real nats-server: an empty bucket lists nothing, every
stored unit is listed, a deleted entry is not, and many listings racing new entries never come
back empty (nats-py's own KeyValue.keys() could: docs in services/kit/directory.py)."""

from __future__ import annotations

import asyncio

import nats

from contracts.messages import UnitKind
from deploy.launcher import NatsServer
from services.kit.directory import Directory, Unit, bucket


async def test_the_listing_holds_every_unit_and_no_deleted_one(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        directory = Directory(await bucket(nc.jetstream()), ttl=0)
        assert await directory.all() == []
        for i in range(40):
            kind = UnitKind.WITNESS if i % 10 == 0 else UnitKind.CARE_CENTRE
            await directory.put(Unit(id=f"unit-{i:02d}", name=f"Unit {i}", kind=kind))
        await directory.put(Unit(id="unit-05", name="Unit 5, renamed", kind=UnitKind.CARE_CENTRE))
        await directory.kv.delete("unit-39")

        listed = await directory.all()
        assert [u.id for u in listed] == [f"unit-{i:02d}" for i in range(39)]
        assert next(u.name for u in listed if u.id == "unit-05") == "Unit 5, renamed"
        assert await directory.get("unit-39") is None

        # Listings while others write: each sees at least the 39 units there before it began.
        async def writer() -> None:
            for i in range(40, 80):
                await directory.put(Unit(id=f"unit-{i:02d}", name="n", kind=UnitKind.SCHOOL))

        results = await asyncio.gather(writer(), *(directory.all() for _ in range(30)))
        assert all(len(r) >= 39 for r in results[1:])
        assert sum(u.kind is UnitKind.WITNESS for u in await directory.all()) == 4
    finally:
        await nc.close()
