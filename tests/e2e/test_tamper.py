"""The tamper suite: someone with the consent service's host and database edits the decision
log and its index tables. Each manipulation is detected by `emaflyt consent verify`, by the
audit page's full verification and, where the log itself changed, by a witness outside the
database; each names the record. An untouched log verifies across a key rotation.

One system (SQLite) with a reference witness; each manipulation is made on the live database
and undone before the next (the last one is left for the witness to find by itself).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.launcher import System
from services.consent.log import DEFAULT_ORIGIN
from services.kit import merkle, tlog
from tests.conftest import start_system
from tests.e2e.test_consent import cli, consent, flow, open_case, receipt, recorded, share, uid
from tests.e2e.test_witness import WitnessProcess, ask, cosigned_all, start_witness
from tests.support import Partner, query, wait_for

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("tamper"))
    yield sys_
    sys_.down()


@pytest.fixture
async def witness(system: System, tmp_path: Path) -> AsyncIterator[WitnessProcess]:
    w = await start_witness(system, tmp_path)
    yield w
    w.stop()


def db(system: System) -> Path:
    return system.data_dir / "consent.db"


async def history(system: System) -> dict[str, str]:
    """Consents, withheld and released decisions: the log the manipulations are made on."""
    from contracts.messages import UnitKind

    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    out = {"case_id": case_id}
    from tests.e2e.test_consent import KOPP

    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    out["withheld"] = (await receipt(centre, receipts, request.request_id))["decision_id"]
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    given = consent(case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])])
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await recorded(centre, acks, given.consent_id)
    out["consent"] = given.consent_id
    for name in ("released", "released2"):
        request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
        answer = await receipt(centre, receipts, request.request_id)
        assert answer["outcome"] == "released"
        out[name] = answer["decision_id"]
    await centre.nc.close()
    await kommune.nc.close()
    return out


def rotate_log_key(system: System, witness: WitnessProcess) -> str:
    """The runbook's rotation: the next key made, its vkey given to the witness first, the
    service restarted on it; the old key is archived, not trusted less."""
    keys = system.data_dir / "keys"
    out = cli(system, "consent", "log-key", "--out", str(keys / "consent-log.next.pem"))
    assert out.returncode == 0, out.stderr
    vkey = out.stdout.strip()
    with (witness.data_dir / "keys" / "witnessed-logs.vkeys").open("a") as fh:
        fh.write(vkey + "\n")
    system.procs["consent"].stop()
    shutil.move(keys / "consent-log.pem", keys / "consent-log.retired.pem")
    shutil.move(keys / "consent-log.next.pem", keys / "consent-log.pem")
    system.start_service("consent")
    return vkey


def verify(system: System) -> tuple[int, str]:
    out = cli(system, "consent", "verify")
    return out.returncode, out.stdout + out.stderr


class Officer:
    """The privacy officer on the audit pages, over HTTP."""

    def __init__(self, system: System) -> None:
        self.base = f"http://127.0.0.1:{system.http_ports['consent']}"
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self) -> None:
        async with self.http.get(f"{self.base}/audit/login") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
        form = {"csrf": token, "username": "ombud", "password": PASSWORD}
        async with self.http.post(f"{self.base}/audit/login", data=form) as resp:
            assert "/audit/login" not in str(resp.url), await resp.text()

    async def verify(self) -> tuple[str, str]:
        """Run the full verification on the status page: (result, the section's text)."""
        async with self.http.get(f"{self.base}/audit/status") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
        async with self.http.post(f"{self.base}/audit/status/verify", data={"csrf": token}) as resp:
            page = await resp.text()
        result = re.search(r'data-testid="verification" data-result="(\w+)"', page).group(1)
        return result, page

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def officer(system: System) -> AsyncIterator[Officer]:
    out = cli(
        system,
        "audit",
        "user",
        "add",
        "--username",
        "ombud",
        "--role",
        "privacy_officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0, out.stderr
    o = Officer(system)
    await o.sign_in()
    yield o
    await o.close()


# -- manipulations ---------------------------------------------------------------------------


def sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return run


def resign(
    signer: tlog.Signer | None, rewrite: Callable[[sqlite3.Connection], None] | None = None
) -> Callable[[sqlite3.Connection], None]:
    """Rewrite records (optionally), then recompute every leaf hash, tree head and the right
    edge, signing the heads with `signer`: a careful editor with a key."""

    def run(conn: sqlite3.Connection) -> None:
        if rewrite is not None:
            rewrite(conn)
        frontier = merkle.Frontier()
        for idx, body in conn.execute("select idx, body from consent_log order by idx").fetchall():
            leaf = merkle.leaf_hash(body.encode())
            frontier.append(leaf)
            conn.execute("update consent_log set leaf_hash = ? where idx = ?", (leaf.hex(), idx))
            conn.execute(
                "update consent_decision set record_hash = ? where log_index = ?",
                ("sha256:" + leaf.hex(), idx),
            )
            if signer is not None:
                note = signer.sign_note(
                    tlog.Checkpoint(DEFAULT_ORIGIN, idx + 1, frontier.root()).text
                )
                sig = tlog.parse_note(note)[1][0]
                conn.execute(
                    "update consent_tree_head set root = ?, key_id = ?, signature = ? "
                    "where size = ?",
                    (
                        frontier.root().hex(),
                        signer.verifier.key_id,
                        base64.b64encode(sig.id + sig.signature).decode(),
                        idx + 1,
                    ),
                )
        conn.execute(
            "update consent_log_state set frontier = ? where id = 1",
            (json.dumps(frontier.to_json()),),
        )

    return run


def allow_instead(decision_id: str) -> Callable[[sqlite3.Connection], None]:
    """A withheld decision rewritten as a release, in the log and in the table alike."""

    def run(conn: sqlite3.Connection) -> None:
        (body,) = conn.execute(
            "select body from consent_log where ref_id = ?", (decision_id,)
        ).fetchone()
        record = json.loads(body)
        record.update(outcome="allow", legal_basis="statute:hpl-25", fields=["care_needs"])
        new = json.dumps(record, sort_keys=True, separators=(",", ":"))
        conn.execute("update consent_log set body = ? where ref_id = ?", (new, decision_id))
        conn.execute(
            "update consent_decision set outcome = 'allow', legal_basis = "
            "'statute:hpl-25', fields = '[\"care_needs\"]' where id = ?",
            (decision_id,),
        )

    return run


def truncate(keep: int) -> Callable[[sqlite3.Connection], None]:
    """The tail of the log cut off with its tree heads and rows, the right edge reset."""

    def run(conn: sqlite3.Connection) -> None:
        conn.execute(f"delete from consent_log where idx >= {keep}")
        conn.execute(f"delete from consent_tree_head where size > {keep}")
        conn.execute(f"delete from consent_decision where log_index >= {keep}")
        conn.execute(f"delete from consent_consent where log_index >= {keep}")
        frontier = merkle.Frontier()
        for (leaf,) in conn.execute("select leaf_hash from consent_log order by idx"):
            frontier.append(bytes.fromhex(leaf))
        conn.execute(
            "update consent_log_state set size = ?, frontier = ? where id = 1",
            (keep, json.dumps(frontier.to_json())),
        )

    return run


def data_folder_key(system: System) -> tlog.Signer:
    """The service's bus key from the data folder, as the issue's editor used it."""
    return tlog.load_signer(str(system.data_dir / "keys" / "svc-consent.pem"), DEFAULT_ORIGIN)


def log_key(system: System) -> tlog.Signer:
    return tlog.load_signer(str(system.data_dir / "keys" / "consent-log.pem"), DEFAULT_ORIGIN)


class Live:
    """Edit the service's own database, then put it back exactly as it was."""

    def __init__(self, path: Path, backup: Path) -> None:
        self.path, self.backup = path, backup

    def __enter__(self) -> sqlite3.Connection:
        with sqlite3.connect(self.path) as src, sqlite3.connect(self.backup) as dst:
            src.backup(dst)
        self.conn = sqlite3.connect(self.path)
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()
        with sqlite3.connect(self.backup) as src, sqlite3.connect(self.path) as dst:
            src.backup(dst)


# -- the suite -------------------------------------------------------------------------------


@pytest.mark.timeout(900)  # ten manipulations, each verified by the CLI and the page
async def test_tamper_suite(
    system: System, witness: WitnessProcess, officer: Officer, tmp_path: Path
) -> None:
    before = await history(system)
    rotate_log_key(system, witness)
    after = await history(system)
    await cosigned_all(system, witness)
    keys = {
        line.split("+")[1]
        for line in (system.data_dir / "keys" / "consent-log.vkeys").read_text().splitlines()
        if not line.startswith("#")
    }
    heads = {k for (k,) in query(db(system), "select distinct key_id from consent_tree_head")}
    assert len(keys) == 2 and len(heads) == 2  # heads under both keys, both verify by key id

    # Untouched, across the rotation: nothing is detected anywhere.
    code, out = verify(system)
    assert code == 0 and f"witness {witness.unit_id}: agrees" in out, out
    result, page = await officer.verify()
    assert result == "ok", page
    assert f'data-witness="{witness.unit_id}" data-status="agrees"' in page, re.findall(
        r"data-witness.*", page
    )

    size = query(db(system), "select count(*) from consent_log")[0][0]
    idx = {ref: i for i, ref in query(db(system), "select idx, ref_id from consent_log")}
    w = f"witness {witness.unit_id}"

    def rec(ref: str) -> str:
        return f"{ref} (decision) at index {idx[ref]}"

    cases: list[tuple[str, Callable[[sqlite3.Connection], None], list[str], list[str]]] = [
        # (what, manipulation, the verifier and page must say, the witness must say)
        (
            "a decision row deleted",
            sql(f"delete from consent_decision where id = '{before['released']}'"),
            [f"decision {before['released']}: its record {rec(before['released'])} has no row"],
            [],
        ),
        (
            "source_unit changed in the table",
            sql(
                "update consent_decision set source_unit = 'centre-x' "
                f"where id = '{after['released']}'"
            ),
            [f"decision {after['released']}: table column(s) source_unit differ"],
            [],
        ),
        (
            "purpose, category and reasons changed",
            sql(
                "update consent_decision set purpose = 'schooling', data_category = 'school', "
                f"reasons = '[]' where id = '{before['withheld']}'"
            ),
            [f"decision {before['withheld']}: table column(s) data_category, purpose, reasons"],
            [],
        ),
        (
            "policy_input changed",
            sql(
                "update consent_decision set policy_input = json_set(policy_input, "
                f"'$.child.age', 17) where id = '{after['withheld']}'"
            ),
            [f"decision {after['withheld']}: table column(s) policy_input differ"],
            [],
        ),
        (
            "an extra consent row",
            sql(
                "insert into consent_consent (consent_id, case_id, version, status, policy, "
                "registered_by, log_index, updated_at) select 'forged-consent', case_id, 1, "
                "'active', policy, registered_by, 0, updated_at from consent_consent limit 1"
            ),
            ["consent forged-consent: table row (log index 0) has no record in the log"],
            [],
        ),
        (
            "the tail truncated with its tree heads",
            truncate(idx[after["released"]]),
            [
                f"{w} cosigned tree size {size}, but the log holds {idx[after['released']]} "
                f"records: the record at index {idx[after['released']]} and every one after it "
                "were removed"
            ],
            ["truncated"],
        ),
        (
            "a record rewritten, heads re-signed with the data folder's svc-consent.pem",
            resign(data_folder_key(system), allow_instead(before["withheld"])),
            [
                "tree head(s)",
                "which is not one of the log's keys",
                f"record {rec(before['withheld'])} differs from what was witnessed",
            ],
            ["disagrees"],
        ),
        (
            "a record rewritten, heads re-signed with the log's own key",
            resign(log_key(system), allow_instead(after["withheld"])),
            [f"record {rec(after['withheld'])} differs from what was witnessed"],
            ["disagrees"],
        ),
        (
            "two records swapped",
            sql(
                f"update consent_log set idx = -1 where idx = {idx[before['released']]}",
                f"update consent_log set idx = {idx[before['released']]} "
                f"where idx = {idx[before['released2']]}",
                f"update consent_log set idx = {idx[before['released2']]} where idx = -1",
            ),
            [
                f"belongs at index {idx[before['released']]}: the log was reordered",
                f"at index {idx[before['released']]} differs from what was witnessed",
            ],
            ["disagrees"],
        ),
        (
            "a forged head with a new key over a rewritten record",
            resign(
                tlog.Signer(DEFAULT_ORIGIN, Ed25519PrivateKey.generate()),
                allow_instead(before["withheld"]),
            ),
            [
                "which is not one of the log's keys",
                f"record {rec(before['withheld'])} differs from what was witnessed",
            ],
            ["disagrees"],
        ),
    ]
    for what, manipulate, expected, witness_says in cases:
        with Live(db(system), tmp_path / "backup.db") as conn:
            manipulate(conn)
            conn.commit()
            code, out = verify(system)
            assert code == 1 and "FAILED" in out, f"{what}: {out}"
            for text in expected:
                assert text in out, f"{what}: {text!r} not in\n{out}"
            for text in witness_says:
                assert f"{w}: {text}" in out or text in out, f"{what}: {out}"
            result, page = await officer.verify()
            assert result == "failed", what
            for text in expected:
                assert text.replace("'", "&#39;") in page, f"{what}: page lacks {text!r}"

    code, out = verify(system)
    assert code == 0, f"after undoing every manipulation: {out}"

    # Left in place, a rewrite the log goes on from: the witness refuses the next checkpoint
    # by itself, and its alarm reaches the status page.
    with sqlite3.connect(db(system)) as conn:
        resign(log_key(system), allow_instead(before["withheld"]))(conn)
    await history(system)
    alarm = await wait_for(lambda: (ask(system, witness) or {}).get("alarms"), timeout=30)
    assert "not consistent with the one this witness cosigned" in alarm[0]["problem"]
    await wait_for(lambda: query(db(system), "select problem from consent_witness_alarm"))
    result, page = await officer.verify()
    assert result == "failed" and 'data-testid="witness-alarms"' in page
