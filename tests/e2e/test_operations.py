"""Runbook procedures against the real system: replay dead letters after a fix; rotate a unit's
key (add the new one, revoke the old)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System
from services.kit.outbox import build_event
from services.kit.signing import UnitKey
from tests.support import ARRIVAL, Partner, dead_letters, query, wait_for

ROOT = Path(__file__).resolve().parents[2]


def cli(system: System, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


async def test_replay_dead_letters_after_the_fix(fresh_system: System, tmp_path: Path) -> None:
    system = fresh_system
    key = UnitKey.generate("centre-late")  # the centre's key is not registered yet
    subject, _, body, headers = build_event(
        key, "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": "centre-late"})
    )
    nc = await system.connect()
    await nc.jetstream().publish(subject, body, headers=headers)
    letters = await wait_for(lambda: dead_letters(nc))
    assert letters[0]["Ema-Dlq-Reason"].startswith("unknown signing key")
    listed = cli(system, "dlq", "list")
    assert "unknown signing key" in listed.stdout and "1 dead letters" in listed.stdout

    # The fix: register the centre with its key. Then replay.
    pem = tmp_path / "late.pem"
    key.save(pem)
    from services.kit.directory import Directory, bucket

    await Directory(await bucket(nc.jetstream())).add_key(
        "centre-late", "Sent omsorgssenter", UnitKind.CARE_CENTRE, key.kid, key.public_b64
    )
    assert cli(system, "dlq", "replay").returncode == 2  # says which, or nothing happens
    out = cli(system, "dlq", "replay", "--consumer", "intake-inbound")
    assert "replayed to ema.intake.arrival" in out.stdout, out.stderr
    await wait_for(
        lambda: query(system.data_dir / "intake.db", "select count(*) from intake_case") == [(1,)]
    )
    assert await dead_letters(nc) == []  # replayed letters leave the dead-letter stream
    await nc.close()


async def test_rotate_a_units_key(fresh_system: System) -> None:
    system = fresh_system
    old = await Partner.register(system, "centre-rot", UnitKind.CARE_CENTRE)
    new = await Partner.register(system, "centre-rot", UnitKind.CARE_CENTRE)
    out = cli(system, "unit", "revoke-key", "--id", "centre-rot", "--kid", old.key.kid)
    assert out.returncode == 0 and new.key.kid in out.stdout, out.stderr
    bad = cli(system, "unit", "revoke-key", "--id", "centre-rot", "--kid", "nope")
    assert bad.returncode == 2 and "has no key 'nope'" in bad.stderr
    # The old key's NATS user is disconnected at once and cannot come back.
    assert old.own is not None
    await wait_for(lambda: old.own.is_closed, timeout=10)
    old.own = None  # what it signed can still reach the bus another way (a replay): refused
    await asyncio.sleep(5.5)  # services trust their directory cache for at most 5 s
    await old.send(
        "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": "centre-rot"})
    )
    letters = await wait_for(lambda: dead_letters(old.nc))
    assert "revoked" in letters[0]["Ema-Dlq-Reason"]
    await new.send(
        "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": "centre-rot"})
    )
    await wait_for(
        lambda: query(system.data_dir / "intake.db", "select count(*) from intake_case") == [(1,)]
    )
    for p in (old, new):
        await p.close()
