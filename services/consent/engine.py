"""Policy engines behind one interface. A policy that cannot be loaded means withhold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

POLICY_DIR = Path(__file__).parent / "policies"
ENTRYPOINT = "ema/share/decision"


def policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.rego") if not p.name.endswith("_test.rego"))


def revision(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.rego")) + sorted(directory.glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def withhold(reason: str, policy_revision: str) -> dict[str, Any]:
    return {"allow": False, "fields": [], "legal_basis": None, "reasons": [reason],
            "reason_nb": "Forespørselen kunne ikke vurderes, og ingenting ble delt.",
            "policy_revision": policy_revision}  # fmt: skip


class Engine(Protocol):
    revision: str

    def decide(self, policy_input: dict[str, Any]) -> dict[str, Any]: ...


class RegopyEngine:
    """rego-cpp embedded through regopy: the bundle is compiled once at start."""

    def __init__(self, directory: Path = POLICY_DIR) -> None:
        from regopy import Interpreter

        self.revision = revision(directory)
        self.error: str | None = None
        try:
            builder = Interpreter()
            data_file = directory / "data.json"
            if data_file.exists():
                builder.add_data_json(data_file.read_text(encoding="utf-8"))
            for path in policy_files(directory):
                builder.add_module(path.name, path.read_text(encoding="utf-8"))
            self.bundle = builder.build(None, [ENTRYPOINT])
            if not self.bundle.ok():
                raise ValueError("bundle build failed")
            self.runner = Interpreter()
        except Exception as exc:
            self.error = f"policy could not be loaded: {type(exc).__name__}: {exc}"

    def decide(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        if self.error:
            return withhold(self.error, self.revision)
        self.runner.set_input(json.loads(json.dumps(policy_input, default=str)))
        out = self.runner.query_bundle_entrypoint(self.bundle, ENTRYPOINT)
        if not out.ok() or len(out) == 0 or str(out) == "undefined":
            return withhold("policy gave no decision (undefined)", self.revision)
        result = dict(out[0].expressions[0])
        if not isinstance(result.get("allow"), bool):
            return withhold("policy decision has no boolean allow", self.revision)
        result["policy_revision"] = self.revision
        return result


def legal_data(directory: Path = POLICY_DIR) -> dict[str, Any]:
    """The policy data's legal parameters (data.legal), also used to validate consents."""
    return json.loads((directory / "data.json").read_text(encoding="utf-8"))["legal"]
