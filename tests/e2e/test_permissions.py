"""Bus permissions against a real nats-server: every service and unit kind may publish and
subscribe only to its own subjects; every forbidden publish and subscribe is refused."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterator

import nats
import pytest

from contracts.registry import CONTRACTS
from deploy.launcher import System
from deploy.permissions import users
from tests.conftest import start_system

SUBJECTS = sorted({c.subject.replace("{unit}", "kommune-0301") for c in CONTRACTS})


def nats_match(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and not fnmatch.fnmatchcase(s[i], token)):
            return False
    return len(p) == len(s)


def allowed(patterns: list[str], subject: str) -> bool:
    return any(nats_match(p, subject) for p in patterns)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("perm"))
    yield sys_
    sys_.down()


async def violations(system: System, user: str, publish: list[str], subscribe: list[str]
                     ) -> list[str]:  # fmt: skip
    seen: list[str] = []

    async def on_error(exc: Exception) -> None:
        seen.append(str(exc))

    nc = await nats.connect(system.url_for(user), error_cb=on_error, allow_reconnect=False)
    for subject in subscribe:
        await nc.subscribe(subject)
    for subject in publish:
        await nc.publish(subject, b"{}")
    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()
    return seen


@pytest.mark.parametrize("user", sorted(set(users()) - {"operator"}))
async def test_every_forbidden_publish_and_subscribe_is_refused(system: System, user: str) -> None:
    perms = users()[user]
    forbidden_pub = [s for s in SUBJECTS if not allowed(perms["publish"], s)]
    forbidden_sub = [s for s in SUBJECTS if not allowed(perms["subscribe"], s)]
    seen = " ".join(await violations(system, user, forbidden_pub, forbidden_sub)).lower()
    for subject in forbidden_pub:
        assert f'publish to "{subject}"' in seen, (user, subject)
    for subject in forbidden_sub:
        assert f'subscription to "{subject}"' in seen, (user, subject)
    # And what it may subscribe to raises nothing (a control: the check can tell them apart).
    assert (
        await violations(system, user, [], [s for s in SUBJECTS if allowed(perms["subscribe"], s)])
        == []
    )


async def test_a_school_cannot_read_settlement_offers(system: System) -> None:
    got: list[bytes] = []
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    async def on_msg(msg) -> None:  # noqa: ANN001
        got.append(msg.data)

    school = await nats.connect(system.url_for("unit-school"), error_cb=on_error)
    municipality = await nats.connect(system.url_for("unit-municipality"))
    operator = await system.connect()
    await school.subscribe("ema.municipality.offers.kommune-0301", cb=on_msg)
    await municipality.subscribe("ema.municipality.offers.kommune-0301", cb=on_msg)
    await school.flush()
    await municipality.flush()
    await operator.publish("ema.municipality.offers.kommune-0301", b"offer")
    await operator.flush()
    await asyncio.sleep(0.3)
    assert got == [b"offer"]  # the municipality's subscription only
    assert any('subscription to "ema.municipality.offers.kommune-0301"' in e.lower()
               for e in errors)  # fmt: skip
    for nc in (school, municipality, operator):
        await nc.close()


async def test_intake_cannot_decide_or_read_other_streams(system: System) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    intake = await nats.connect(system.url_for("svc-intake"), error_cb=on_error)
    js = intake.jetstream(timeout=2)
    refused = (nats.errors.Error, TimeoutError)  # the server drops it: no answer comes
    with pytest.raises(refused):
        await js.publish("ema.share.decided", b"{}")  # decisions are the broker's
    with pytest.raises(refused):
        await js.get_msg("SHARE", 1)  # no reading another domain's stream
    with pytest.raises(refused):
        await js.add_consumer("SHARE", durable_name="spy")
    ack = await js.publish("ema.dlq.intake", b"{}")  # its own dead letters: allowed
    assert ack.stream == "DLQ"
    await intake.close()
    assert any("permissions violation" in e.lower() for e in errors)
