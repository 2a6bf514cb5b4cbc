"""`emaflyt consent grant|withdraw|export` over the real bus (real nats-server, services and
SQLite): the CLI signs as the unit and waits for the broker's answer; the export is FHIR R4."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import urllib.request
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent

from contracts.messages import ConsentGrantedV1, UnitKind
from deploy.launcher import System
from tests.e2e.test_consent import cli, consent, flow, open_case_at, uid
from tests.support import ARRIVAL, Partner, query


def run_cli(system: System, *args: str) -> Any:
    return asyncio.to_thread(cli, system, *args)


async def centre_with_case(system: System, tmp_path: Path) -> tuple[Partner, Path, str, str]:
    """A care centre with its key on disk (as its staff would have it) and a case."""
    centre = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    key_file = tmp_path / f"{centre.key.unit_id}.pem"
    centre.key.save(key_file)
    duf, case_id = await open_case_at(system, centre, 12)
    return centre, key_file, duf, case_id


def as_unit(centre: Partner, key_file: Path) -> tuple[str, ...]:
    return ("--unit", centre.key.unit_id, "--key", str(key_file))


def write(tmp_path: Path, given: ConsentGrantedV1) -> str:
    path = tmp_path / f"{given.consent_id}.json"
    path.write_text(given.model_dump_json())
    return str(path)


def consent_service(system: System) -> str:
    return json.loads((system.data_dir / "run.json").read_text())["services"]["consent"]


async def test_grant_withdraw_and_export_as_fhir_r4(system: System, tmp_path: Path) -> None:
    centre, key_file, duf, case_id = await centre_with_case(system, tmp_path)
    kept = consent(
        case_id,
        [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"], ["kommune-0301"])],
        refusals=[flow(["health"], ["health"], ["school"], ["schooling"])],
    )
    out = await run_cli(
        system, "consent", "grant", "--file", write(tmp_path, kept), *as_unit(centre, key_file)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"consent {kept.consent_id} version 1 recorded: active" in out.stdout
    assert query(
        system.data_dir / "consent.db",
        "select status from consent_consent where consent_id = ?",
        kept.consent_id,
    ) == [("active",)]

    dropped = consent(case_id, [flow(["school"], ["school"], ["care_centre"], ["schooling"])])
    out = await run_cli(
        system, "consent", "grant", "--file", write(tmp_path, dropped), *as_unit(centre, key_file)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    out = await run_cli(
        system,
        "consent",
        "withdraw",
        "--case",
        case_id,
        "--consent",
        dropped.consent_id,
        "--by",
        "representative",
        *as_unit(centre, key_file),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"consent {dropped.consent_id} version 1 recorded: withdrawn" in out.stdout

    # The service's endpoint: a collection Bundle that parses back with fhir.resources.
    url = f"{consent_service(system)}/cases/{case_id}/consents/fhir"
    token = system.api_token("privacy_officer", "ombud")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback service)
        assert resp.headers["Content-Type"].startswith("application/fhir+json")
        text = resp.read().decode()
    parsed = Bundle.model_validate_json(text)
    assert parsed.type == "collection" and parsed.total == 2
    by_id = {}
    for entry in parsed.entry:
        resource = Consent.model_validate(entry.resource.model_dump())
        by_id[resource.identifier[0].value] = resource
    active, withdrawn = by_id[kept.consent_id], by_id[dropped.consent_id]
    assert active.status == "active" and withdrawn.status == "inactive"
    assert active.patient.identifier.value == case_id
    assert active.sourceAttachment.hash == hashlib.sha256(b"signed pdf").digest()
    assert active.performer[0].type == "RelatedPerson"
    kinds = [(p.type, [c.code for c in p.class_fhir]) for p in active.provision.provision]
    assert kinds == [("permit", ["kopp"]), ("deny", ["health"])]
    assert [c.code for c in active.provision.provision[1].purpose] == ["schooling"]
    # Never the child's name or DUF number.
    assert ARRIVAL["name"] not in text and duf not in text

    # The CLI: FHIR to a file, the broker's JSON and CSV.
    target = tmp_path / "consents.fhir.json"
    out = await run_cli(system, "consent", "export", case_id, "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert f"2 consents of case {case_id} written" in out.stdout
    assert Bundle.model_validate_json(target.read_text()).total == 2
    out = await run_cli(system, "consent", "export", case_id, "--format", "json")
    views = {v["consent_id"]: v for v in json.loads(out.stdout)}
    assert views[dropped.consent_id]["status"] == "withdrawn"
    assert views[dropped.consent_id]["withdrawn_by"] == "representative"
    out = await run_cli(system, "consent", "export", case_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert sorted((r["consent_id"], r["provision"], r["status"]) for r in rows) == sorted(
        [
            (kept.consent_id, "permit", "active"),
            (kept.consent_id, "deny", "active"),
            (dropped.consent_id, "permit", "withdrawn"),
        ]
    )
    for output in (target.read_text(), out.stdout):
        assert ARRIVAL["name"] not in output and duf not in output


async def test_a_refused_grant_prints_the_dead_letter_reason_and_fails(
    system: System, tmp_path: Path
) -> None:
    centre, key_file, _, case_id = await centre_with_case(system, tmp_path)
    oral_kopp = consent(
        case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])], form="oral"
    )
    out = await run_cli(
        system, "consent", "grant", "--file", write(tmp_path, oral_kopp), *as_unit(centre, key_file)
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "REFUSED by the consent broker" in out.stderr
    assert "form: kopp needs written consent (K1/K2)" in out.stderr
    sql = "select 1 from consent_consent where consent_id = ?"
    assert not query(system.data_dir / "consent.db", sql, oral_kopp.consent_id)

    out = await run_cli(
        system,
        "consent",
        "withdraw",
        "--case",
        case_id,
        "--consent",
        "no-such-consent",
        "--by",
        "representative",
        *as_unit(centre, key_file),
    )
    assert out.returncode == 1
    assert "consent_id: no such consent for this case" in out.stderr


async def test_an_invalid_consent_file_is_refused_before_anything_is_sent(
    system: System, tmp_path: Path
) -> None:
    centre, key_file, _, case_id = await centre_with_case(system, tmp_path)
    bad = json.loads(
        consent(
            case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])]
        ).model_dump_json()
    )
    del bad["grantor"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    out = await run_cli(system, "consent", "grant", "--file", str(path), *as_unit(centre, key_file))
    assert out.returncode == 2
    assert "invalid no.ema.consent.granted.v1: grantor: Field required" in out.stderr
    assert "published" not in out.stdout
