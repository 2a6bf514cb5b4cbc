"""The 357 municipalities with county and Bufetat region, loaded as versioned data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "municipalities.json"


@dataclass(frozen=True)
class Municipality:
    kommunenummer: str
    name: str
    county: str
    bufetat_region: str


@dataclass(frozen=True)
class Register:
    source: str
    municipalities: dict[str, Municipality]

    def get(self, kommunenummer: str) -> Municipality | None:
        return self.municipalities.get(kommunenummer)


def load_register(path: Path = DATA_FILE) -> Register:
    raw = json.loads(path.read_text(encoding="utf-8"))
    items = {
        m["kommunenummer"]: Municipality(
            m["kommunenummer"], m["name"], m["county"], m["bufetat_region"]
        )
        for m in raw["municipalities"]
    }
    return Register(raw["source"], items)
