"""Every golden scenario of tests/e2e/test_consent.py with the consent broker on OPA's Go
evaluator in process (EMA_POLICY_ENGINE=opa-go, the default since docs/decisions/0019), named
explicitly; the broker's process has OPA's library loaded and not regopy's; and an evaluator
that cannot load means every request is withheld, as with the other engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.messages import UnitKind
from deploy.launcher import System
from tests.conftest import start_system
from tests.e2e.test_consent import (  # noqa: F401  (collected here again, on opa-go)
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
from tests.support import Partner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("system"), EMA_POLICY_ENGINE="opa-go")
    yield sys_
    sys_.down()


def loaded_libraries(system: System) -> str:
    pid = system.procs["consent"].proc.pid
    return Path(f"/proc/{pid}/maps").read_text()


async def test_the_broker_decides_with_opas_go_evaluator_and_never_loads_regopy(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    answer = await receipt(centre, receipts, request.request_id)
    record = decision(system, answer["decision_id"])
    assert answer["outcome"] == "withheld"  # no consent yet: the policy's own decision
    assert any("(K7)" in r for r in record["reasons"]), record["reasons"]
    maps = loaded_libraries(system)
    assert "libopabridge" in maps  # OPA's Go evaluator
    assert "librego" not in maps  # rego-cpp never loaded
    await centre.close()
    await kommune.close()


async def test_an_evaluator_that_cannot_load_means_withhold(tmp_path: Path) -> None:
    """The bindings' library missing (here: a package of that name that fails to load, found
    first on the path): the broker starts, and every request is withheld with the reason."""
    broken = tmp_path / "broken"
    (broken / "opa_bindings").mkdir(parents=True)
    (broken / "opa_bindings" / "__init__.py").write_text(
        "raise OSError('libopabridge.so: cannot open shared object file')\n"
    )
    sys_ = start_system(
        tmp_path / "system", EMA_POLICY_ENGINE="opa-go", PYTHONPATH=f"{broken}{os.pathsep}{ROOT}"
    )
    try:
        centre, case_id = await open_case(sys_)
        kommune = await Partner.register(sys_, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
        receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
        request = await share(centre, case_id, kommune.key.unit_id, "identity", "anonymous", {})
        answer = await receipt(centre, receipts, request.request_id)
        assert answer["outcome"] == "withheld"
        record = decision(sys_, answer["decision_id"])
        assert any("policy engine could not be loaded" in r for r in record["reasons"])
        await centre.close()
        await kommune.close()
    finally:
        sys_.down()
