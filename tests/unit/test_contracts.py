"""The checked-in schemas and AsyncAPI document match the models; the subject map holds."""

from contracts import generate
from contracts.fields import confidential_fields
from contracts.messages import ArrivalV1, CaseOpenedV1, DeadlineScheduledV1, NotificationRecordedV1
from contracts.registry import CONTRACTS, STREAMS, stream_for_subject


def test_checked_in_schemas_and_asyncapi_match_the_models() -> None:
    stale = [
        str(path)
        for path, text in generate.expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], "run `make schemas` and commit the result"
    assert generate.main(["--check"]) == 0


def test_every_subject_has_exactly_one_stream() -> None:
    for contract in CONTRACTS:
        subject = contract.subject_for("unit-x")
        owners = [s for s in STREAMS if any(subject.startswith(p.rstrip(">")) for p in s.subjects)]
        assert len(owners) == 1, contract.type
        assert stream_for_subject(subject) is owners[0]


def test_types_are_versioned_and_unique() -> None:
    types = [c.type for c in CONTRACTS]
    assert len(types) == len(set(types))
    assert all(t.rsplit(".", 1)[-1].startswith("v") for t in types)


def test_personal_fields_are_marked_confidential() -> None:
    assert {"duf_number", "name", "birth_date"} <= confidential_fields(ArrivalV1)
    assert "birth_date" in confidential_fields(CaseOpenedV1)
    # What notify renders from carries nothing confidential.
    assert confidential_fields(DeadlineScheduledV1) == set()
    assert confidential_fields(NotificationRecordedV1) == set()


def test_addressed_subjects_match_only_one_token() -> None:
    receipt = next(c for c in CONTRACTS if c.type == "no.ema.share.receipt.v1")
    assert receipt.matches("ema.share.receipt.centre-a")
    assert not receipt.matches("ema.share.receipt.centre-a.extra")
    assert not receipt.matches("ema.share.request")


def test_partner_readme_lists_every_type_with_its_subject() -> None:
    from pathlib import Path

    readme = (Path(generate.HERE) / "README.md").read_text()
    for contract in CONTRACTS:
        subject = contract.subject.replace("{unit}", "<unit>")
        assert f"| `{contract.type}` | `{subject}` |" in readme, contract.type


def test_only_what_no_unit_may_read_and_no_service_reads_is_retired() -> None:
    """A retired type (docs/decisions/0018) is one only services could read, none does any
    more and none sends; every type a service sends has a reader."""
    from deploy.permissions import EMITS, SERVICES, subscriptions

    read = {t for s in SERVICES for sub in subscriptions(s) for t in sub.contracts}
    sent = {t for types in EMITS.values() for t in types}
    for contract in CONTRACTS:
        if contract.retired:
            assert not contract.readers and contract.type not in sent, contract.type
        elif contract.type in sent:
            assert contract.readers or contract.type in read, f"{contract.type} has no reader"


def test_the_outbox_refuses_a_retired_type() -> None:
    import pytest

    from services.kit.outbox import Outbox
    from services.kit.signing import UnitKey

    outbox = Outbox(None, UnitKey.generate("svc-test"))  # type: ignore[arg-type]
    opened = CaseOpenedV1(
        case_id="c-1",
        case_ref="EMA-1",
        care_centre="centre-a",
        arrived_at="2026-05-04T10:00:00+02:00",
        birth_date="2014-01-01",
        birth_date_estimated=False,
    )
    with pytest.raises(LookupError, match="retired"):
        outbox.add(None, "no.ema.case.opened.v1", opened)  # type: ignore[arg-type]
