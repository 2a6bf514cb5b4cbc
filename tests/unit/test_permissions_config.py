"""The bus permissions follow the code and the subject map: each service may publish exactly
what it emits; a unit reads only what is addressed to it and the broadcasts its kind may read,
which carry no confidential field."""

import re
from pathlib import Path

import pytest

from contracts.fields import confidential_fields
from contracts.messages import UnitKind
from contracts.registry import CONTRACTS
from deploy import permissions

ROOT = Path(__file__).resolve().parents[2]
EMIT = re.compile(r'(?:emit|outbox\.add)\([^"]*"(no\.ema\.[a-z.-]+\.v[0-9]+)"')


def test_each_service_may_publish_exactly_the_types_its_code_emits() -> None:
    for service in permissions.SERVICES:
        code = "".join(p.read_text() for p in (ROOT / "services" / service).rglob("*.py"))
        assert sorted(set(EMIT.findall(code))) == sorted(permissions.EMITS[service]), service


def test_broadcasts_units_may_read_carry_no_confidential_field() -> None:
    for contract in CONTRACTS:
        if contract.readers and "{unit}" not in contract.subject:
            assert confidential_fields(contract.model) == set(), contract.type


@pytest.mark.parametrize("kind", permissions.UNIT_KINDS)
def test_a_unit_reads_only_its_own_subjects_and_its_own_inbox(kind: UnitKind) -> None:
    perms = permissions.unit_permissions("unit-a", kind)
    for subject in perms["subscribe"]:
        assert (
            subject == "_INBOX_unit-a.>"
            or subject.endswith(".unit-a")
            or any(c.subject == subject and kind in c.readers for c in CONTRACTS)
        ), subject
    assert not any(
        p.startswith("$JS.API.STREAM.CREATE")
        or p.startswith("$JS.API.CONSUMER.CREATE")
        or p == ">"
        or p.startswith("_INBOX.")
        for p in perms["publish"]
    )
    for p in perms["publish"]:
        if p.startswith(("$JS.API.CONSUMER.", "$JS.ACK.")):
            assert ".unit-unit-a" in p, p  # its own durables only


def test_services_create_nothing_on_the_bus() -> None:
    for service in permissions.SERVICES:
        perms = permissions.service_permissions(service)
        assert not any(
            ".CREATE." in p or ".UPDATE." in p or ".DELETE." in p for p in perms["publish"]
        ), service
        # Its own replies; the broker also answers witnesses' consistency-proof requests.
        extra = ["ema.rpc.consent.consistency"] if service == "consent" else []
        assert sorted(perms["subscribe"]) == sorted([f"_INBOX_svc-{service}.>", *extra])
