"""Every golden scenario of tests/e2e/test_consent.py with the consent broker on the OPA engine
(EMA_POLICY_ENGINE=opa), through opa-python-client against an OPA REST server. No `opa` binary
can be installed on these machines, so the server is tests/fake_opa.py: OPA's REST API in front
of OPA's own Go evaluator (opa-golib-python-bindings); docker-compose runs the OPA server.
What this proves: the broker uploads the policies and data, OPA decides every scenario as
regopy does, the broker never loads regopy, and an unreachable OPA means withhold."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.messages import UnitKind
from deploy.launcher import System, free_port, wait_until
from services.consent.engine import POLICY_DIR, revision
from tests.conftest import start_system
from tests.e2e.test_consent import (  # noqa: F401  (collected here again, on the OPA engine)
    KOPP,
    decision,
    open_case,
    receipt,
    share,
    test_invalid_consent_is_dead_lettered_with_the_rule,
    test_k1_k11_kopp_with_written_consent_is_delivered_with_only_settlement_fields,
    test_k1_kopp_without_consent_is_withheld_and_the_receipt_reveals_nothing,
    test_k3_representative_health_consent_does_not_count_for_a_17_year_old,
    test_k6_no_release_after_a_withdrawal_is_acknowledged_with_requests_in_flight,
    test_k9_anonymous_consultation_is_delivered_without_identifying_fields,
    test_k10_concern_to_barnevern_is_delivered_on_statute_with_a_review,
    uid,
)
from tests.support import Partner, http_json, query

ROOT = Path(__file__).resolve().parents[2]


def start_opa(port: int, log: Path, delay: float = 0.0) -> subprocess.Popen:
    with open(log, "ab") as out:  # the process keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_opa", "--port", str(port), "--delay", str(delay)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: http_json(f"http://127.0.0.1:{port}/health") == {}, 15, "OPA stand-in")
    return proc


@pytest.fixture(scope="module")
def opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    port = free_port()
    state = {"port": port, "log": tmp_path_factory.mktemp("opa") / "opa.log"}
    state["proc"] = start_opa(port, state["log"])
    yield state
    state["proc"].terminate()
    state["proc"].wait(10)


@pytest.fixture(scope="module")
def system(opa: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(
        tmp_path_factory.mktemp("system"),
        EMA_POLICY_ENGINE="opa",
        EMA_OPA_URL=f"http://127.0.0.1:{opa['port']}",
    )
    yield sys_
    sys_.down()


def test_the_broker_loaded_the_policies_into_opa_and_uses_it(system: System, opa: dict) -> None:
    stats = http_json(f"http://127.0.0.1:{opa['port']}/_stats")
    assert stats["evaluator"] == "opa-golib"  # OPA's own Go evaluator, not regopy
    assert "emaflyt/share" in stats["policies"]
    assert len(stats["policies"]) == len(
        [p for p in POLICY_DIR.glob("*.rego") if not p.name.endswith("_test.rego")]
    )


async def test_opa_unreachable_means_withhold_then_recovers(system: System, opa: dict) -> None:
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    opa["proc"].terminate()
    opa["proc"].wait(10)
    request = await share(centre, case_id, kommune.key.unit_id, "identity", "anonymous", {})
    answer = await receipt(centre, receipts, request.request_id)
    assert answer["outcome"] == "withheld"
    record = decision(system, answer["decision_id"])
    assert any("policy engine unreachable" in r for r in record["reasons"])
    revisions = query(
        system.data_dir / "consent.db",
        "select policy_revision from consent_decision where id = ?",
        answer["decision_id"],
    )
    assert revisions == [(revision(POLICY_DIR),)]  # the files the broker uploaded
    # OPA comes back empty: the broker loads the policies again and decides normally.
    opa["proc"] = start_opa(opa["port"], opa["log"])
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    answer = await receipt(centre, receipts, request.request_id)
    record = decision(system, answer["decision_id"])
    assert not any("unreachable" in r or "not be loaded" in r for r in record["reasons"])
    assert any("(K7)" in r for r in record["reasons"])  # the policy's own reason
    stats = json.loads(
        urllib.request.urlopen(  # noqa: S310
            f"http://127.0.0.1:{opa['port']}/_stats", timeout=5
        ).read()
    )
    assert stats["queries"] >= 1
    await centre.close()
    await kommune.close()


def test_the_broker_on_opa_never_loads_regopy() -> None:
    """Slim containers cannot load regopy (it needs libatomic): with EMA_POLICY_ENGINE=opa the
    broker must not import it, not even to build a default engine."""
    code = (
        "import asyncio, sys\n"
        "from services.consent import app\n"
        "asyncio.run(app.engine.configure('opa', 'http://127.0.0.1:9'))\n"
        "assert app.engine.name == 'opa' and app.engine.error\n"
        "print('regopy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
