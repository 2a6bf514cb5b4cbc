"""The unit directory's listing: an empty directory is empty, a bus that does not answer is
an error (the witness check once printed "no witness is registered" when the listing timed
out under load, and passed a truncated log as unwitnessed)."""

from __future__ import annotations

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoKeysError

from contracts.messages import UnitKind
from services.kit.directory import Directory, Unit


class Entry:
    def __init__(self, value: bytes) -> None:
        self.value = value


class FakeKV:
    """keys() fails with each of `failures` in turn, then lists the stored units."""

    def __init__(self, units: list[Unit], failures: list[Exception]) -> None:
        self.units = {u.id: u for u in units}
        self.failures = list(failures)
        self.calls = 0

    async def keys(self) -> list[str]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if not self.units:
            raise NoKeysError
        return list(self.units)

    async def get(self, key: str) -> Entry:
        return Entry(self.units[key].model_dump_json().encode())


WITNESS = Unit(id="witness-a", name="Witness A", kind=UnitKind.WITNESS)


async def test_an_empty_directory_lists_nothing() -> None:
    assert await Directory(FakeKV([], [])).all() == []  # type: ignore[arg-type]


async def test_a_listing_that_times_out_is_tried_again() -> None:
    kv = FakeKV([WITNESS], [NatsTimeoutError(), TimeoutError()])
    assert [u.id for u in await Directory(kv).all()] == ["witness-a"]  # type: ignore[arg-type]
    assert kv.calls == 3


async def test_a_bus_that_never_answers_is_an_error_not_an_empty_directory() -> None:
    kv = FakeKV([WITNESS], [NatsTimeoutError()] * 3)
    with pytest.raises(TimeoutError):
        await Directory(kv).all()  # type: ignore[arg-type]
