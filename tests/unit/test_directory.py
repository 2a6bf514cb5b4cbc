"""The unit directory's listing: an empty directory is empty, a bus that does not answer is
an error (the witness check once printed "no witness is registered" when the listing timed
out under load, and passed a truncated log as unwitnessed). On a real server:
tests/kit/test_directory_listing.py."""

from __future__ import annotations

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from contracts.messages import UnitKind
from services.kit.directory import Directory, Unit


class Entry:
    def __init__(self, value: bytes) -> None:
        self.value = value


class FakeKV:
    """Gets the stored units."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = {u.id: u for u in units}

    async def get(self, key: str) -> Entry:
        return Entry(self.units[key].model_dump_json().encode())


class Listing(Directory):
    """The directory's listing fails with each of `failures` in turn, then lists the ids."""

    def __init__(self, units: list[Unit], failures: list[Exception]) -> None:
        super().__init__(FakeKV(units))  # type: ignore[arg-type]
        self.failures = list(failures)
        self.calls = 0

    async def keys(self) -> list[str]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return list(self.kv.units)  # type: ignore[attr-defined]


WITNESS = Unit(id="witness-a", name="Witness A", kind=UnitKind.WITNESS)


async def test_an_empty_directory_lists_nothing() -> None:
    assert await Listing([], []).all() == []


async def test_a_listing_that_times_out_is_tried_again() -> None:
    directory = Listing([WITNESS], [NatsTimeoutError(), TimeoutError()])
    assert [u.id for u in await directory.all()] == ["witness-a"]
    assert directory.calls == 3


async def test_a_bus_that_never_answers_is_an_error_not_an_empty_directory() -> None:
    with pytest.raises(TimeoutError):
        await Listing([WITNESS], [NatsTimeoutError()] * 3).all()
