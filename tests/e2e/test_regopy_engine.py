"""Every golden scenario of tests/e2e/test_consent.py with the consent broker on regopy
(EMA_POLICY_ENGINE=regopy; the default is OPA's Go evaluator since docs/decisions/0019), so
both in-process engines decide through the real service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.launcher import System
from tests.conftest import start_system
from tests.e2e.test_consent import (  # noqa: F401  (collected here again, on regopy)
    test_invalid_consent_is_dead_lettered_with_the_rule,
    test_k1_k11_kopp_with_written_consent_is_delivered_with_only_settlement_fields,
    test_k1_kopp_without_consent_is_withheld_and_the_receipt_reveals_nothing,
    test_k3_representative_health_consent_does_not_count_for_a_17_year_old,
    test_k6_no_release_after_a_withdrawal_is_acknowledged_with_requests_in_flight,
    test_k9_anonymous_consultation_is_delivered_without_identifying_fields,
    test_k10_concern_to_barnevern_is_delivered_on_statute_with_a_review,
)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("system"), EMA_POLICY_ENGINE="regopy")
    yield sys_
    sys_.down()


def test_the_broker_has_regopy_loaded(system: System) -> None:
    maps = Path(f"/proc/{system.procs['consent'].proc.pid}/maps").read_text()
    assert "librego" in maps
