"""Every unit and service on the bus as itself (issue 12, findings 1, 4 and 5): a partner
holding only its own credentials reads nothing that is not addressed to it, publishes only what
its kind may send, cannot reshape the bus, and is cut off within seconds when revoked."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest

from contracts.messages import ArrivalV1, UnitKind
from deploy import units
from deploy.launcher import System
from deploy.permissions import UNIT_KINDS
from deploy.provision import unit_jwt_path
from deploy.trust import connect_options
from tests.security.conftest import as_unit, open_case, settle, uid
from tests.support import ARRIVAL, Partner, dead_letters, wait_for

# Broadcasts that carry personal data (birth dates, asylum outcomes, who shares what with whom)
# or reveal it (task codes per case): services read them, no unit does.
PERSONAL_BROADCASTS = (
    "ema.case.>",
    "ema.case.opened",
    "ema.case.residence",
    "ema.share.decided",
    "ema.share.request.v2",
    "ema.intake.arrival",
    "ema.planning.deadline.scheduled",
    "ema.planning.task.status",
    "ema.notify.recorded",
    "ema.>",
    ">",
)


async def test_a_school_cannot_read_replies_meant_for_others(system: System, closing) -> None:  # noqa: ANN001
    """Finding 1: every user could subscribe to _INBOX.> and read what services fetched from
    their consumers (arrivals with name, DUF number, birth date)."""
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    closing.append(school)
    nc, seen = await as_unit(system, school)
    closing.append(nc)
    got: list[bytes] = []

    async def keep(msg) -> None:  # noqa: ANN001
        got.append(msg.data)

    for subject in ("_INBOX.>", "_INBOX_svc-intake.>", "_INBOX_svc-consent.>", "*.>"):
        await nc.subscribe(subject, cb=keep)
    await settle(nc)
    centre, _ = await open_case(system)  # intake fetches an arrival with a name in it
    closing.append(centre)
    await asyncio.sleep(1.0)
    assert got == []
    for subject in ("_INBOX.>", "_INBOX_svc-intake.>", "_INBOX_svc-consent.>", "*.>"):
        assert seen.refused_subscription(subject), (subject, seen.errors)


# Every kind that takes part in cases (a log witness reads tree heads only: test_witness.py).
@pytest.mark.parametrize("kind", [k for k in UNIT_KINDS if k is not UnitKind.WITNESS])
async def test_a_unit_of_each_kind_reads_only_what_is_addressed_to_it(
    system: System,
    kind: UnitKind,
    closing,  # noqa: ANN001
) -> None:
    """Finding 4 and the acceptance list: no _INBOX.>, no $JS.API beyond its own consumers,
    no broadcast with personal data, no other unit's deliveries; its own addressed subjects
    and its own durable consumers work."""
    me = await Partner.register(system, uid(kind.value.replace("_", "-")), kind)
    other = await Partner.register(system, uid(kind.value.replace("_", "-")), kind)
    closing.extend([me, other])
    nc, seen = await as_unit(system, me)
    closing.append(nc)
    forbidden = [
        *PERSONAL_BROADCASTS,
        f"ema.share.delivered.v2.{other.unit_id}",
        f"ema.share.receipt.{other.unit_id}",
        f"ema.consent.recorded.{other.unit_id}",
        f"ema.notify.tasks.{other.unit_id}",
        "ema.share.delivered.v2.*",
        "ema.share.delivered.*",
        "$JS.API.>",
        "ema.dlq.>",
    ]
    for subject in forbidden:
        await nc.subscribe(subject)
    await settle(nc)
    for subject in forbidden:
        assert seen.refused_subscription(subject), (kind, subject)
    # Its own addressed subjects are fine (a control: the check tells them apart).
    own = [
        f"ema.share.delivered.v2.{me.unit_id}",
        f"ema.share.receipt.{me.unit_id}",
        f"ema.notify.tasks.{me.unit_id}",
    ]
    before = len(seen.errors)
    for subject in own:
        await nc.subscribe(subject)
    await settle(nc)
    assert seen.errors[before:] == []
    # JetStream: no new consumers, no other unit's durable, no reading streams directly.
    api = [
        f"$JS.API.CONSUMER.CREATE.SHARE.spy.ema.share.delivered.v2.{other.unit_id}",
        "$JS.API.CONSUMER.DURABLE.CREATE.SHARE.spy",
        f"$JS.API.CONSUMER.MSG.NEXT.SHARE.unit-{other.unit_id}",
        f"$JS.ACK.SHARE.unit-{other.unit_id}.1.1.1.1.0",
        "$JS.API.STREAM.MSG.GET.CASE",
        "$JS.API.STREAM.INFO.INTAKE",
        "$JS.API.CONSUMER.INFO.SHARE.consent-requests",
        "$JS.API.STREAM.UPDATE.DLQ",
    ]
    for subject in api:
        await nc.publish(subject, b"{}")
    await settle(nc)
    for subject in api:
        assert seen.refused_publish(subject), (kind, subject)
    js = nc.jetstream(timeout=5)
    # The unit directory is readable (the services' keys, the broker's sealing keys).
    directory = await js.key_value("ema_units")
    broker = json.loads((await directory.get("svc-consent")).value)
    assert broker["sealing_keys"] and broker["keys"]
    # Its own durable on the SHARE stream is there for it (provisioned at registration).
    info = await js.consumer_info("SHARE", f"unit-{me.unit_id}")
    assert set(info.config.filter_subjects or [info.config.filter_subject]) >= {
        f"ema.share.delivered.v2.{me.unit_id}",
        f"ema.share.receipt.{me.unit_id}",
    }


async def test_a_barnevern_unit_does_not_learn_of_a_concern_sent_to_another(
    system: System,
    closing,  # noqa: ANN001
) -> None:
    """Finding 4: a `statute:bvl-13-2` delivery told every barnevern unit that a concern was
    reported about a child. Now it reaches its addressee's consumer alone."""
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    bv, nosy = (
        await Partner.register(system, uid("bv"), UnitKind.BARNEVERN, sealing=True),
        await Partner.register(system, uid("bv"), UnitKind.BARNEVERN, sealing=True),
    )
    closing.extend([school, bv, nosy])
    _, case_id = await open_case(system)
    watcher, seen = await as_unit(system, nosy)
    closing.append(watcher)
    leaked: list[bytes] = []

    async def keep(msg) -> None:  # noqa: ANN001
        leaked.append(msg.data)

    await watcher.subscribe(f"ema.share.delivered.v2.{bv.unit_id}", cb=keep)
    await settle(watcher)
    request = await school.share_request(
        case_id,
        bv.unit_id,
        "school",
        "concern_report",
        {"concern": "bekymring", "observations": "fravær"},
        claimed_basis="bvl-13-2",
    )
    await school.send("no.ema.share.request.v2", request, case_id=case_id)
    sub = await bv.bus.jetstream().pull_subscribe_bind(f"unit-{bv.unit_id}", "SHARE")
    got = await sub.fetch(1, timeout=15)
    assert json.loads(got[0].data)["data"]["legal_basis"] == "statute:bvl-13-2"
    assert leaked == [] and seen.refused_subscription(f"ema.share.delivered.v2.{bv.unit_id}")
    with pytest.raises((nats.errors.Error, TimeoutError)):
        other = await watcher.jetstream(timeout=2).pull_subscribe_bind(
            f"unit-{bv.unit_id}", "SHARE"
        )
        await other.fetch(1, timeout=2)


async def test_a_unit_publishes_only_what_its_kind_sends_and_never_as_another(
    system: System,
    closing,  # noqa: ANN001
) -> None:
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    centre = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    closing.extend([school, centre])
    nc, seen = await as_unit(system, school)
    closing.append(nc)
    others = (
        "ema.intake.arrival",  # a care centre's
        "ema.case.opened",  # intake's
        "ema.share.decided",  # the broker's
        f"ema.share.delivered.v2.{centre.unit_id}",
        "ema.dlq.intake",
        "$KV.ema_units.svc-consent",  # the directory is the operator's to write
        f"$KV.ema_units.{school.unit_id}",
    )
    for subject in others:
        await nc.publish(subject, b"{}")
    await settle(nc)
    for subject in others:
        assert seen.refused_publish(subject), subject
    # What it may send, signed as another unit: the signature gives it away.
    before = len(await dead_letters(school.nc))
    data = ArrivalV1(**{**ARRIVAL, "care_centre": centre.unit_id})
    from services.kit.outbox import build_event

    subject, _, body, _ = build_event(centre.key, "no.ema.intake.arrival.v1", data)
    forged = {"Nats-Msg-Id": uid("forged"), **school.key.sign(body)}
    await centre.publish_raw(subject, body, forged)  # as if the centre's copy was replayed
    letters = await wait_for(lambda: _more(dead_letters(school.nc), before))
    assert "is not the envelope source" in letters[-1]["Ema-Dlq-Reason"]


async def _more(coro, before: int):  # noqa: ANN001, ANN202
    letters = await coro
    return letters if len(letters) > before else None


async def test_services_cannot_reshape_the_bus(system: System) -> None:
    """Finding 5: a service user could create and update any stream (a republish on INTAKE
    copied arrivals to an attacker; DLQ retention could be cut)."""
    from services.kit.bus import credentials
    from services.kit.settings import Settings
    from services.kit.signing import UnitKey

    settings = Settings.from_env("intake", system.service_env("intake"))
    assert settings.key_file and settings.unit_id
    key = UnitKey.load(settings.unit_id, settings.key_file)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(
        servers=system.servers,
        error_cb=on_error,
        allow_reconnect=False,
        **credentials(key, settings.nats_jwt_file),
    )
    js = nc.jetstream(timeout=2)
    from nats.js.api import RePublish, StreamConfig

    refused = (nats.errors.Error, TimeoutError)
    with pytest.raises(refused):
        await js.update_stream(
            StreamConfig(
                name="INTAKE",
                subjects=["ema.intake.>"],
                republish=RePublish(src=">", dest="leak.>"),
            )
        )
    with pytest.raises(refused):
        await js.update_stream(StreamConfig(name="DLQ", subjects=["ema.dlq.>"], max_age=60))
    with pytest.raises(refused):
        await js.add_stream(StreamConfig(name="SPY", subjects=["spy.>"]))
    with pytest.raises(refused):
        await js.add_consumer("SHARE", durable_name="spy")
    with pytest.raises(refused):
        await js.delete_consumer("CASE", "consent-cases")
    await nc.close()
    operator = await system.connect()
    info = await operator.jetstream().stream_info("DLQ")
    assert (
        info.config.max_age == 90 * 24 * 3600
        and not (await operator.jetstream().stream_info("INTAKE")).config.republish
    )
    await operator.close()
    # And no service logs its NATS credentials: the URL carries none; no JWT or seed either.
    logs = "".join(p.read_text() for p in (system.data_dir / "logs").glob("*.log"))
    ready = [json.loads(line) for line in logs.splitlines() if '"service ready"' in line]
    assert ready and all("@" not in r["nats"] for r in ready)
    for secret in ("eyJ", "SUA", "-----BEGIN"):
        assert secret not in logs


async def test_a_revoked_unit_is_cut_off_within_seconds_and_refused_at_reconnect(
    system: System,
    closing,  # noqa: ANN001
) -> None:
    """Finding 4: a revoked unit kept reading until its whole kind's password changed."""
    gone = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    stays = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    closing.extend([gone, stays])
    jwt = unit_jwt_path(system.data_dir, gone.unit_id, gone.key.kid).read_text().strip()
    login = connect_options(jwt, gone.key.private, f"_INBOX_{gone.unit_id}")
    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    nc = await nats.connect(
        servers=system.servers, allow_reconnect=False, closed_cb=on_closed, **login
    )
    started = time.monotonic()
    await units.revoke(gone.nc, system.servers, system.trust(), gone.unit_id)
    await asyncio.wait_for(closed.wait(), timeout=5)
    assert time.monotonic() - started < 5 and nc.is_closed
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(servers=system.servers, allow_reconnect=False, **login)
    # Another school, on its own identity, is untouched.
    same_kind, seen = await as_unit(system, stays)
    closing.append(same_kind)
    await same_kind.subscribe(f"ema.share.receipt.{stays.unit_id}")
    await settle(same_kind)
    assert same_kind.is_connected and seen.errors == []
    # Registering the revoked unit again is refused: a revoked id stays revoked.
    with pytest.raises(units.Refused, match="revoked"):
        await units.register(
            gone.nc,
            system.data_dir,
            system.trust(),
            gone.unit_id,
            "x",
            UnitKind.SCHOOL,
            stays.key.public_b64,
        )
