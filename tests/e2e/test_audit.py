"""The privacy officer's audit over the real system: pages in headless Chromium (Debian's
`chromium`, driven by Playwright), and `emaflyt audit` on the same database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from contracts.messages import UnitKind
from deploy.launcher import System
from tests.e2e.test_consent import (
    KOPP,
    ROOT,
    cli,
    consent,
    flow,
    open_case,
    receipt,
    recorded,
    share,
    uid,
)
from tests.support import Partner, query

CHROMIUM = Path(os.environ.get("EMA_CHROMIUM", "/usr/bin/chromium"))
SHOTS = os.environ.get("EMA_SCREENSHOTS")  # a folder, e.g. docs/screenshots
PASSWORD = "correct horse battery staple"


def audit_cli(system: System, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return cli(system, "audit", *args, stdin=stdin)


def base(system: System) -> str:
    return f"http://127.0.0.1:{system.http_ports['consent']}"


@pytest.fixture
def accounts(system: System) -> dict[str, str]:
    # The system is shared by the module's tests: its accounts are added once.
    for name, role in (("ombud", "privacy_officer"), ("drift", "operator")) * (
        not getattr(system, "audit_accounts", False)
    ):
        out = audit_cli(
            system,
            "user",
            "add",
            "--username",
            name,
            "--role",
            role,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert out.returncode == 0, out.stderr
    system.audit_accounts = True  # type: ignore[attr-defined]
    return {"officer": "ombud", "operator": "drift"}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("EMA_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"{CHROMIUM} is missing and EMA_REQUIRE_BROWSER=1: apt-get install chromium"
            )
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        await chromium.close()


async def signed_in(browser: Any, system: System, username: str) -> Any:
    """A new browser page signed in with the keyboard only."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(base(system) + "/audit/login")
    await page.keyboard.press("Tab")  # the skip link comes first
    await page.locator("#username").fill(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert "/audit/login" not in page.url, await page.locator("main").inner_text()
    return page


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def withheld_and_released(system: System) -> tuple[str, str, str]:
    """A case with one withheld kopp request and one released on the representative's
    consent; returns (case_id, withheld decision id, released decision id)."""
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    withheld = (await receipt(centre, receipts, request.request_id))["decision_id"]
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    given = consent(case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])])
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await recorded(centre, acks, given.consent_id)
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    answer = await receipt(centre, receipts, request.request_id)
    assert answer["outcome"] == "released"
    return case_id, withheld, answer["decision_id"]


async def test_officer_finds_a_withheld_decision_and_sees_its_basis_and_a_valid_proof(
    system: System, accounts: dict[str, str], browser: Any
) -> None:
    case_id, withheld, released = await withheld_and_released(system)
    page = await signed_in(browser, system, accounts["officer"])
    assert page.url.endswith("/audit/decisions")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "ds-skip-link"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.locator("#case_id").fill(case_id)
    await page.locator("#outcome").select_option("withhold")
    await page.locator("#case_id").press("Enter")
    await page.wait_for_url("**outcome=withhold**")
    links = page.locator("table.ds-table tbody a[href^='/audit/decisions/']")
    assert await links.count() == 1  # the released decision of the case is filtered out
    await shot(page, "search")
    await links.first.click()
    await page.wait_for_url(f"**/audit/decisions/{withheld}")
    proof = page.get_by_test_id("proof")
    assert await proof.get_attribute("data-proof") == "valid"
    assert "Gyldig" in await proof.inner_text()
    basis = await page.get_by_test_id("legal-basis").inner_text()
    assert "Ikke noe rettsgrunnlag" in basis
    body = await page.locator("main").inner_text()
    assert "(K7)" in body and "Signert tretopp" in body
    assert "HEMMELIG" not in body and "Zahra" not in body  # no payload values
    await shot(page, "decision-withheld")
    # The released one names its consent as legal basis, in English on request.
    await page.goto(f"{base(system)}/audit/decisions/{released}?lang=en")
    basis = await page.get_by_test_id("legal-basis").inner_text()
    assert "consent:" in basis and "Consent given for this sharing" in basis
    assert await page.get_by_test_id("proof").get_attribute("data-proof") == "valid"
    await shot(page, "decision-released-en")
    await page.goto(f"{base(system)}/audit/cases/{case_id}/report?lang=nb")
    report = await page.locator("main").inner_text()
    assert "Samtykke til akkurat denne delingen" in report
    assert "Avslått, ingenting ble sendt" in report and "recommended_measure" in report
    await shot(page, "access-report")
    await page.goto(f"{base(system)}/audit/cases/{case_id}/consents")
    assert "Gitt" in await page.locator("table").inner_text()
    await shot(page, "consent-history")
    # Every view was recorded, with its query, and is itself viewable.
    await page.goto(f"{base(system)}/audit/views")
    views = await page.locator("table").inner_text()
    assert f"case_id={case_id}" in views and f"/audit/decisions/{withheld}" in views
    await shot(page, "audit-views")


async def test_operator_is_refused_on_decision_pages_but_sees_the_log_status(
    system: System, accounts: dict[str, str], browser: Any
) -> None:
    _, withheld, _ = await withheld_and_released(system)
    page = await signed_in(browser, system, accounts["operator"])
    assert page.url.endswith("/audit/status")
    size = int(await page.get_by_test_id("tree-size").inner_text())
    assert size >= 2
    for path in (f"/audit/decisions/{withheld}", "/audit/decisions", "/audit/what-if"):
        response = await page.goto(base(system) + path)
        assert response.status == 403
        text = await page.locator("main").inner_text()
        assert "Ingen tilgang" in text and withheld not in text
    refused = query(
        system.data_dir / "consent.db",
        "select path from audit_view where username = ? and allowed = 0",
        accounts["operator"],
    )
    assert (f"/audit/decisions/{withheld}",) in refused
    # Not signed in at all: sent to the sign-in page.
    anonymous = await browser.new_page()
    await anonymous.goto(f"{base(system)}/audit/decisions/{withheld}")
    assert "/audit/login" in anonymous.url
    await shot(anonymous, "login")


STRICTER = "allow if {\n\tnot stale\n\thas_basis\n"


async def test_what_if_of_a_stricter_policy_lists_the_affected_decisions(
    system: System, accounts: dict[str, str], browser: Any
) -> None:
    _, withheld, released = await withheld_and_released(system)
    share_rego = (ROOT / "services/consent/policies/share.rego").read_text()
    assert STRICTER in share_rego
    # Stricter: a consent alone no longer suffices for kopp.
    candidate = share_rego.replace(STRICTER, STRICTER + "\tnot kopp_on_consent\n")
    candidate += (
        '\nkopp_on_consent if {\n\tconsent_basis\n\tinput.request.data_category == "kopp"\n}\n'
    )
    page = await signed_in(browser, system, accounts["officer"])
    await page.goto(base(system) + "/audit/what-if")
    await page.locator("#module").select_option("share.rego")
    await page.locator("#rego").fill(candidate)
    await page.get_by_role("button", name="Kjør").click()
    await page.wait_for_load_state()
    table = page.get_by_test_id("whatif-changes")
    text = await table.inner_text()
    assert released in text and withheld not in text
    row = table.locator("tr", has=page.locator(f"a[href='/audit/decisions/{released}']"))
    assert "Holdt tilbake" in await row.inner_text()
    await shot(page, "what-if")
    # The same from the CLI, with progress on stderr.
    rego = Path(system.data_dir) / "stricter.rego"
    rego.write_text(candidate)
    out = audit_cli(system, "what-if", "--rego", str(rego), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    changed = {c["decision_id"]: c for c in result["changes"]}
    assert changed[released]["candidate_outcome"] == "withhold" and withheld not in changed
    assert "evaluating:" in out.stderr
    # The current policy changes nothing.
    same = audit_cli(
        system,
        "what-if",
        "--policy-dir",
        str(ROOT / "services/consent/policies"),
        "--json",
        "--quiet",
    )
    assert json.loads(same.stdout)["changes"] == [], same.stdout


async def test_tampering_with_a_record_fails_verification_in_the_page_and_the_cli(
    system: System, accounts: dict[str, str], browser: Any
) -> None:
    _, withheld, _ = await withheld_and_released(system)
    db = system.data_dir / "consent.db"
    index, body = query(db, "select idx, body from consent_log where ref_id = ?", withheld)[0]
    assert audit_cli(system, "verify", "--quiet").returncode == 0
    try:
        with sqlite3.connect(db) as conn:  # someone edits the row in the database
            conn.execute(
                "update consent_log set body = ? where idx = ?",
                (body.replace('"withhold"', '"allow"'), index),
            )
        page = await signed_in(browser, system, accounts["officer"])
        await page.goto(f"{base(system)}/audit/decisions/{withheld}")
        proof = page.get_by_test_id("proof")
        assert await proof.get_attribute("data-proof") == "invalid"
        assert "Ugyldig" in await proof.inner_text()
        await shot(page, "decision-tampered")
        await page.goto(base(system) + "/audit/status")
        await page.get_by_role("button", name="Kontroller hele loggen nå").click()
        await page.wait_for_url("**/audit/status")
        result = page.get_by_test_id("verification")
        assert await result.get_attribute("data-result") == "failed"
        assert f"record {withheld} (decision) at index {index} was altered" in (
            await result.inner_text()
        )
        await shot(page, "status-failed")
        out = audit_cli(system, "verify")
        assert out.returncode == 1 and "FAILED" in out.stdout
        assert f"at index {index} was altered" in out.stdout and "verifying:" in out.stderr
        shown = audit_cli(system, "show", withheld)
        assert shown.returncode == 1 and "INVALID" in shown.stdout
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("update consent_log set body = ? where idx = ?", (body, index))
    await page.goto(base(system) + "/audit/status")
    await page.get_by_role("button", name="Kontroller hele loggen nå").click()
    await page.wait_for_url("**/audit/status")
    assert await page.get_by_test_id("verification").get_attribute("data-result") == "ok"
    await shot(page, "status")


async def test_break_the_glass_review_is_recorded_and_appended_to_the_log(
    system: System, accounts: dict[str, str], browser: Any
) -> None:
    # The case's own care centre (a unit linked to the case) breaks the glass to a hospital.
    health, case_id = await open_case(system)
    hospital = await Partner.register(system, uid("sykehus"), UnitKind.HEALTH, sealing=True)
    receipts = await health.nc.subscribe(f"ema.share.receipt.{health.key.unit_id}")
    request = await share(
        health,
        case_id,
        hospital.key.unit_id,
        "health",
        "emergency",
        {"allergies": "penicillin", "therapy_notes": "x"},
        break_the_glass={"justification": "bevisstløs, trenger allergier"},
    )
    answer = await receipt(health, receipts, request.request_id)
    assert answer["outcome"] == "released"
    decision_id = answer["decision_id"]
    page = await signed_in(browser, system, accounts["officer"])
    await page.goto(base(system) + "/audit/glass")
    row = page.locator("tr", has=page.locator(f"a[href='/audit/decisions/{decision_id}']"))
    assert "UTC" in await row.inner_text()  # its deadline
    await shot(page, "glass")
    await row.get_by_label("Merknad").fill("Nødvendig: pasienten var bevisstløs.")
    await row.get_by_role("button", name="Godkjenn").click()
    await page.wait_for_load_state()
    assert "ført i beslutningsloggen" in await page.locator("main").inner_text()
    db = system.data_dir / "consent.db"
    (review_id, verdict, reviewer, index) = query(
        db,
        "select id, verdict, reviewer, log_index from audit_review where decision_id = ?",
        decision_id,
    )[0]
    assert (verdict, reviewer) == ("approved", accounts["officer"])
    kind, body = query(db, "select kind, body from consent_log where idx = ?", index)[0]
    assert kind == "btg.review" and json.loads(body)["decision_id"] == decision_id
    assert "bevisstløs" not in body  # the note stays in the table; the log holds its hash
    assert audit_cli(system, "verify", "--quiet").returncode == 0


async def test_cli_search_pages_without_counts_and_exports(
    system: System, accounts: dict[str, str], tmp_path: Path
) -> None:
    case_id, withheld, released = await withheld_and_released(system)
    first = audit_cli(system, "search", "--case-id", case_id, "--limit", "1", "--json")
    page1 = json.loads(first.stdout)
    assert [d["decision_id"] for d in page1["decisions"]] == [released]  # newest first
    assert page1["next"] and "count" not in first.stdout
    second = json.loads(
        audit_cli(
            system,
            "search",
            "--case-id",
            case_id,
            "--limit",
            "1",
            "--after",
            page1["next"],
            "--json",
        ).stdout
    )
    assert [d["decision_id"] for d in second["decisions"]] == [withheld]
    assert second["next"] is None
    out = audit_cli(system, "export", "--case-id", case_id, "--format", "csv")
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("decision_id,decided_at,case_id") and len(lines) == 3
    assert lines[1].startswith(withheld)  # oldest first
    path = tmp_path / "d.json"
    audit_cli(
        system,
        "export",
        "--outcome",
        "allow",
        "--case-id",
        case_id,
        "--format",
        "json",
        "--out",
        str(path),
    )
    assert [d["decision_id"] for d in json.loads(path.read_text())] == [released]
    shown = audit_cli(system, "show", released)
    assert shown.returncode == 0 and "proof            valid" in shown.stdout


async def test_session_cookie_is_strict_and_posts_need_the_csrf_token(
    system: System, accounts: dict[str, str]
) -> None:
    import aiohttp

    url = base(system)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{url}/audit/login") as resp:
            form = await resp.text()
        token = form.split('name="csrf" value="')[1].split('"')[0]
        login = {"csrf": token, "username": accounts["officer"], "password": PASSWORD}
        async with http.post(f"{url}/audit/login", data=login, allow_redirects=False) as resp:
            assert resp.status == 303
            cookie = resp.headers.getone("Set-Cookie")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/audit" in cookie
        session_token = cookie.split("=", 1)[1].split(";")[0]
        stored = query(system.data_dir / "consent.db", "select token_hash from audit_session")
        assert all(session_token not in row[0] for row in stored)  # only its hash is kept
        before = query(system.data_dir / "consent.db", "select count(*) from audit_verification")
        async with http.post(f"{url}/audit/status/verify", data={"csrf": "forged"}) as resp:
            assert resp.status == 403
        after = query(system.data_dir / "consent.db", "select count(*) from audit_verification")
        assert before == after
        wrong = {"csrf": token, "username": accounts["officer"], "password": "wrong password!"}
    async with aiohttp.ClientSession() as other:
        async with other.get(f"{url}/audit/login") as resp:
            token = (await resp.text()).split('name="csrf" value="')[1].split('"')[0]
            wrong["csrf"] = token
        async with other.post(f"{url}/audit/login", data=wrong, allow_redirects=False) as resp:
            assert resp.status == 401 and "Feil brukernavn eller passord" in await resp.text()
