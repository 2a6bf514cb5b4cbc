"""A data folder from before per-unit identities (streams in NATS's global account, units in
the directory, no trust) starts as an operator-mode system: nothing on the bus is lost, every
registered unit gets its own NATS user, and the old way in (no credentials) is closed."""

from __future__ import annotations

import json
from pathlib import Path

import nats
import pytest

from contracts.messages import UnitKind
from deploy.launcher import NatsServer, free_port
from deploy.provision import unit_jwt_path
from deploy.trust import connect_options
from services.kit.bus import ensure_streams
from services.kit.directory import Directory, bucket
from services.kit.signing import UnitKey
from tests.conftest import start_system


async def test_an_old_data_folder_keeps_its_streams_and_units(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = NatsServer(data, free_port(), free_port())
    old.start()
    centre = UnitKey.generate("centre-gammel")
    try:
        nc = await nats.connect(old.url)
        js = nc.jetstream()
        await ensure_streams(js)
        directory = Directory(await bucket(js))
        await directory.add_key(
            centre.unit_id, "Gammelt senter", UnitKind.CARE_CENTRE, centre.kid, centre.public_b64
        )
        await js.publish("ema.intake.arrival", b'{"kept": true}', headers={"Nats-Msg-Id": "old-1"})
        await nc.close()
    finally:
        old.stop()
    system = start_system(data)
    try:
        nc = await system.connect()
        msg = await nc.jetstream().get_msg("INTAKE", 1)
        assert json.loads(msg.data) == {"kept": True}
        directory = Directory(await bucket(nc.jetstream()))
        assert (await directory.get(centre.unit_id)) is not None
        await nc.close()
        # The unit registered before gets its own user and logs in with it.
        jwt = unit_jwt_path(data, centre.unit_id, centre.kid).read_text().strip()
        own = await nats.connect(
            servers=system.servers,
            allow_reconnect=False,
            **connect_options(jwt, centre.private, f"_INBOX_{centre.unit_id}"),
        )
        await own.jetstream().publish("ema.intake.arrival", b"{}")  # refused later, for the DLQ
        await own.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(system.nats_url, allow_reconnect=False)  # no credentials
    finally:
        system.down()
