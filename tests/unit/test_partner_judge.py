"""The check's rules (deploy.partner_check.judge) on transcripts made by hand: what each
message should get back, and what counts as wrong. And the examples stay plain: nats-py,
cryptography and the standard library only."""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from deploy.partner_check import FAIL, NO_ANSWER, OK, SENT, judge

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REQ = {
    "request_id": "r1",
    "case_id": "c1",
    "source_unit": "school-a",
    "recipient_unit": "school-a",
    "data_category": "school",
    "purpose": "anonymous_consultation",
}


def event(type_: str, data: dict[str, Any], correlation: str, source: str = "svc-consent") -> dict:
    return {
        "specversion": "1.0",
        "id": f"e-{type_}",
        "source": source,
        "type": type_,
        "time": "2026-12-01T10:00:00+00:00",
        "correlationid": correlation,
        "data": data,
    }


def share_sent(**expect: Any) -> dict:
    return {
        "id": "s1",
        "type": "no.ema.share.request.v2",
        "subject": "ema.share.request.v2",
        "data": REQ,
        **({"expect": expect} if expect else {}),
    }


def receipt(outcome: str) -> dict:
    return {
        "subject": "ema.share.receipt.school-a",
        "event": event(
            "no.ema.share.receipt.v1",
            {
                "request_id": "r1",
                "decision_id": "d1",
                "outcome": outcome,
                "message_nb": "x",
                "message_en": "y",
            },
            "s1",
        ),
    }


def delivery(opened: dict, fields: list[str], content_hash: str | None = None) -> dict:
    plain = json.dumps(opened).encode()
    data = {
        **REQ,
        "decision_id": "d1",
        "fields": fields,
        "legal_basis": "statute:fvl-13a-2",
        "obligations": [],
        "payload": {
            "suite": "HPKE-X25519-SHA256-A256GCM",
            "recipient_kid": "0" * 16,
            "sealed": "AAAA",
        },
        "content_hash": content_hash or "sha256:" + hashlib.sha256(plain).hexdigest(),
        "record_hash": "h",
        "log_index": 1,
        "checkpoint": "emaflyt.local/consent-log\n2\nAAAA\n",
        "inclusion_proof": [],
    }
    return {
        "subject": "ema.share.delivered.v2.school-a",
        "event": event("no.ema.share.delivered.v2", data, "s1"),
        "opened": opened,
        "hash_ok": content_hash is None,
    }


FIELDS = ["age_band", "question", "situation"]


def statuses(record: dict) -> list[str]:
    return [f.status for f in judge({"unit": "school-a", **record})]


def test_a_release_to_yourself_is_opened_and_holds_only_the_released_fields() -> None:
    good = delivery(
        {"data": {"age_band": "10-12", "question": "q"}, "decision_id": "d1", "salt": "s"}, FIELDS
    )
    assert statuses(
        {
            "sent": [share_sent(outcome="released", fields=FIELDS)],
            "received": [receipt("released"), good],
        }
    ) == [OK]
    extra = delivery(
        {"data": {"age_band": "10", "name": "Zahra"}, "decision_id": "d1", "salt": "s"}, FIELDS
    )
    findings = judge(
        {"unit": "school-a", "sent": [share_sent()], "received": [receipt("released"), extra]}
    )
    assert [f.status for f in findings] == [FAIL] and "name" in findings[0].text
    forged = delivery({"data": {}, "decision_id": "d1", "salt": "s"}, FIELDS, "sha256:00")
    assert statuses({"sent": [share_sent()], "received": [receipt("released"), forged]}) == [FAIL]


def test_fields_other_than_the_table_says_fail() -> None:
    narrow = delivery({"data": {"age_band": "10"}, "decision_id": "d1", "salt": "s"}, ["age_band"])
    assert statuses(
        {
            "sent": [share_sent(outcome="released", fields=FIELDS)],
            "received": [receipt("released"), narrow],
        }
    ) == [FAIL]


def test_no_answer_says_where_to_ask_and_what_was_sent() -> None:
    [finding] = judge({"unit": "school-a", "sent": [share_sent()], "received": []}, wait=5)
    assert finding.status == NO_ANSWER
    assert "within 5 s" in finding.text and "dead-letter reason" in finding.text
    assert "source_unit must be you" in finding.text
    assert '"case_id": "c1"' in finding.lines()[1]


def test_an_unexpected_outcome_fails_and_an_expected_withholding_passes() -> None:
    assert statuses(
        {"sent": [share_sent(outcome="released")], "received": [receipt("withheld")]}
    ) == [FAIL]
    assert statuses(
        {"sent": [share_sent(outcome="withheld")], "received": [receipt("withheld")]}
    ) == [OK]


def test_types_without_an_answer_are_reported_as_sent() -> None:
    sent = {
        "id": "s2",
        "type": "no.ema.municipality.capacity.v2",
        "stream": "MUNICIPALITY",
        "seq": 7,
        "data": {},
    }
    [finding] = judge({"unit": "kommune-0301", "sent": [sent], "received": []})
    assert finding.status == SENT and "MUNICIPALITY #7" in finding.text


def notice(task: str, due: str) -> dict[str, Any]:
    return {
        "task_id": f"t-{task}",
        "case_id": "c1",
        "case_ref": "EMA-1",
        "task": task,
        "title_nb": task,
        "title_en": task,
        "due": due,
        "status": "scheduled",
        "responsible_unit": "centre-a",
        "pathway": "ema-care-centre@3",
    }


def test_an_arrivals_notices_count_one_by_one_or_grouped() -> None:
    """A unit on grouped notices (docs/decisions/0020) is judged on the notices the grouped
    message carries, as one on per-task notices is on its messages."""
    sent = {"id": "a1", "type": "no.ema.intake.arrival.v1", "data": {}}
    registered = event(
        "no.ema.intake.arrival-registered.v1",
        {
            "arrival_id": "a1",
            "case_id": "c1",
            "case_ref": "EMA-1",
            "outcome": "opened",
            "care_centre": "centre-a",
        },
        "a1",
        source="svc-intake",
    )
    talk, kopp = notice("arrival_talk", "2026-04-07"), notice("kopp_proposal", "2026-04-23")
    grouped = event(
        "no.ema.notify.task-notices.v1",
        {"case_id": "c1", "case_ref": "EMA-1", "unit": "centre-a", "notices": [talk, kopp]},
        "a1",
        source="svc-notify",
    )
    singles = [
        event("no.ema.notify.task-notice.v1", n, "a1", source="svc-notify") for n in (talk, kopp)
    ]
    said = []
    for answers in ([grouped], singles):
        received = [{"subject": "ema.x.centre-a", "event": e} for e in [registered, *answers]]
        findings = judge({"unit": "centre-a", "sent": [sent], "received": received})
        assert [f.status for f in findings] == [OK, OK]
        said.append(findings[1].text)
    assert (
        said[0]
        == said[1]
        == ("2 task notice(s): arrival_talk due 2026-04-07, kopp_proposal due 2026-04-23")
    )
    # Without any notice, the arrival's deadlines are missing.
    received = [{"subject": "ema.x.centre-a", "event": registered}]
    findings = judge({"unit": "centre-a", "sent": [sent], "received": received})
    assert findings[-1].status == NO_ANSWER


def test_a_received_message_that_breaks_its_contract_fails() -> None:
    broken = receipt("maybe")
    findings = judge({"unit": "school-a", "sent": [share_sent()], "received": [broken]})
    assert findings[0].status == FAIL and "outcome" in findings[0].text


def test_the_examples_use_nothing_but_nats_py_cryptography_and_the_standard_library() -> None:
    allowed = {"nats", "cryptography", "partner", "__future__"}
    for path in EXAMPLES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, f"{path.name}: {name}"
