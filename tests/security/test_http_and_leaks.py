"""HTTP behind sign-in, and nothing confidential in errors, dead letters or files (issue 12,
findings 6 and 7), through the real services' HTTP APIs, bus and databases."""

from __future__ import annotations

import json
import os
import stat
import urllib.error

import pytest

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System, http_json
from services.kit.outbox import build_event
from tests.security.conftest import open_case, uid
from tests.support import ARRIVAL, Partner, dead_letters, query, stream_messages, wait_for


def call(
    system: System, service: str, path: str, token: str | None = None, data: object = None
) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{system.http_ports[service]}{path}"
    try:
        return 200, http_json(url, timeout=5, token=token, data=data)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def views(system: System, path: str) -> list[tuple]:
    return query(
        system.database_url("consent"),
        "select username, role, allowed from audit_view where path = ? order by id",
        path,
    )


async def test_decisions_and_consents_answer_only_the_privacy_officer_and_every_view_is_kept(
    system: System, closing
) -> None:  # noqa: ANN001
    """Finding 6: /cases/{id}/decisions and /consents answered anyone (an operator, refused
    on /audit/decisions, read them there) and no view was recorded."""
    centre, case_id = await open_case(system)
    closing.append(centre)
    for path in (
        f"/cases/{case_id}/decisions",
        f"/cases/{case_id}/consents",
        f"/cases/{case_id}/consents/fhir",
    ):
        assert call(system, "consent", path)[0] == 401
        assert call(system, "consent", path, "ema1.forged.token")[0] == 401
        status, body = call(system, "consent", path, system.api_token("operator", "drift"))
        assert status == 403 and "operator" in body["error"]
        unit = system.api_token("unit", "skolen", unit=centre.unit_id)
        assert call(system, "consent", path, unit)[0] == 403
        assert call(system, "consent", path, system.api_token("privacy_officer", "ombud"))[0] == 200
        assert views(system, path) == [
            ("(no valid token)", "-", False),
            ("(no valid token)", "-", False),
            ("drift", "operator", False),
            (centre.unit_id, "unit", False),
            ("ombud", "privacy_officer", True),
        ]


def test_every_service_api_needs_a_token(system: System) -> None:
    for service, path in (
        ("intake", "/cases/x"),
        ("planning", "/figures"),
        ("planning", "/cases/x/tasks"),
        ("notify", "/deliveries"),
        ("notify", "/inbox/centre-a"),
        ("municipality", "/capacity"),
        ("municipality", "/waiting"),
    ):
        status, body = call(system, service, path)
        assert status == 401 and "Bearer" in body["error"], (service, path)
    # Health stays open for the operator's probes.
    assert call(system, "intake", "/healthz")[0] == 200


def test_a_unit_reads_its_own_inbox_only(system: System) -> None:
    mine = system.api_token("unit", "senteret", unit="centre-own")
    assert call(system, "notify", "/inbox/centre-own", mine)[0] == 200
    assert call(system, "notify", "/inbox/centre-other", mine)[0] == 403


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:9/x", "must be https"),
        ("https://127.0.0.1:9/x", "not among the hosts"),
        ("https://169.254.169.254/latest", "not among the hosts"),
        ("https://attacker.example.com/hook", "not among the hosts"),
        ("https://user:pw@hooks.kommune.no/x", "no user or password"),
    ],
)
def test_recipients_need_an_administrator_and_webhooks_an_allowed_https_host(
    system: System, url: str, problem: str
) -> None:
    """Finding 6: POST /recipients accepted any email and webhook_url http://127.0.0.1:9/x
    without credentials (notices redirected, SSRF)."""
    body = {
        "unit": "centre-a",
        "role": "contact_person",
        "webhook_url": url,
        "webhook_secret": "0123456789abcdef",
    }
    assert call(system, "notify", "/recipients", data=body)[0] == 401
    assert call(system, "notify", "/recipients", system.api_token("operator"), body)[0] == 403
    status, answer = call(system, "notify", "/recipients", system.api_token("administrator"), body)
    assert status == 400 and problem in answer["error"]
    ok = {**body, "webhook_url": "https://hooks.kommune.no/emaflyt"}
    assert call(system, "notify", "/recipients", system.api_token("administrator"), ok)[0] == 200


async def test_a_duplicate_sibling_is_refused_without_its_duf_number(
    system: System, closing
) -> None:  # noqa: ANN001
    """Finding 7: an arrival naming the same sibling twice raised an IntegrityError whose
    parameters (the sibling's DUF number) reached intake's log and the Ema-Dlq-Reason."""
    centre = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    closing.append(centre)
    sibling = "202612345678"
    data = ArrivalV1(
        **{
            **ARRIVAL,
            "duf_number": "202611112222",
            "care_centre": centre.unit_id,
            "siblings": [{"duf_number": sibling}, {"duf_number": sibling}],
        }
    )
    before = len(await dead_letters(centre.nc))
    await centre.send("no.ema.intake.arrival.v1", data)

    async def more() -> list | None:
        letters = await dead_letters(centre.nc)
        return letters if len(letters) > before else None

    letter = (await wait_for(more))[-1]
    assert letter["Ema-Dlq-Reason"] == (
        "rejected: siblings: a sibling is listed more than once; list each once"
    )
    logs = "".join(p.read_text() for p in (system.data_dir / "logs").glob("*.log"))
    assert sibling not in logs and sibling not in json.dumps(letter)


async def test_dead_letters_keep_no_names_in_clear_yet_the_operator_can_replay_them(
    system: System, closing
) -> None:  # noqa: ANN001
    """Finding 7: DLQ bodies kept names in clear for 90 days."""
    centre = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    closing.append(centre)
    marker = "Hemmelig Navnesen"
    data = ArrivalV1(**{**ARRIVAL, "name": marker, "care_centre": "centre-somewhere-else"})
    subject, event, body, headers = build_event(centre.key, "no.ema.intake.arrival.v1", data)
    await centre.publish_raw(subject, body, headers)
    letters = await wait_for(lambda: _letter_of(centre, event.id))
    msg, head = letters
    assert marker.encode() not in msg.data and b"2013-05-01" not in msg.data
    assert head["Ema-Dlq-Sealed"] == "HPKE-X25519-SHA256-A256GCM"
    trust = system.trust()
    assert trust is not None
    assert trust.open_dead_letter(msg.data, head) == body  # the operator reads and replays it


async def _letter_of(partner: Partner, msg_id: str):  # noqa: ANN202
    for msg in await stream_messages(partner.nc, "DLQ"):
        head = {k: str(v) for k, v in (msg.headers or {}).items()}
        if head.get("Ema-Dlq-Original-Msg-Id") == msg_id:
            return msg, head
    return None


def test_data_files_are_the_owners_alone(system: System) -> None:
    """Finding 7: SQLite files and logs were created world-readable (644 in a 755 folder)."""
    loose = []
    for root, dirs, files in os.walk(system.data_dir):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                loose.append(f"{oct(mode)} {path}")
    assert stat.S_IMODE(os.stat(system.data_dir).st_mode) == 0o700
    assert loose == []


def test_the_api_refuses_tokens_it_did_not_issue(system: System) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.kit import api_auth

    forged = api_auth.issue(Ed25519PrivateKey.generate(), "mallory", "privacy_officer")
    status, body = call(system, "consent", "/cases/x/decisions", forged)
    assert status == 401 and "not signed by this system" in body["error"]
