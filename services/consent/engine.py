"""Policy engines behind one interface. A policy that cannot be loaded means withhold.

Three evaluators of the same `.rego` files and data: OPA's own Go evaluator in process
(opa-golib-python-bindings, `opa-go`, the embedded default since docs/decisions/0019), regopy
(rego-cpp, `regopy`), and an OPA server over REST (`opa`, containers). The Go evaluator also
stands in for OPA where no `opa` binary runs, and regopy and OPA are checked to decide alike
(tests/unit/test_engine_parity.py)."""

from __future__ import annotations

import hashlib
import json
import os
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
    return {
        "allow": False,
        "fields": [],
        "legal_basis": None,
        "reasons": [reason],
        "reason_nb": "Forespørselen kunne ikke vurderes, og ingenting ble delt.",
        "policy_revision": policy_revision,
    }


class Engine(Protocol):
    revision: str

    async def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]: ...


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


class GoOpaEngine:
    """OPA's Go evaluator in process (opa-golib-python-bindings): the same engine an OPA
    server runs; the broker's embedded engine (`EMA_POLICY_ENGINE=opa-go`), the OPA stand-in,
    engine parity and what-if where regopy cannot load. A library that does not load, a policy
    that does not compile or an evaluation that fails means withhold, as with the others."""

    def __init__(self, directory: Path = POLICY_DIR) -> None:
        self.revision = revision(directory)
        self.error: str | None = None
        self.evaluator: Any = None
        # Go's collector runs on threads of its own; at its default (GOGC=100) an evaluation
        # cost ~40 % more CPU (docs/decisions/0019). Read once, when the library loads; an
        # operator's own GOGC wins.
        os.environ.setdefault("GOGC", "400")
        try:
            from opa_bindings import OpaEngine as Evaluator

            self.evaluator = Evaluator()
        except Exception as exc:  # the bindings or their shared library missing
            self.error = f"policy engine could not be loaded: {type(exc).__name__}: {exc}"
            return
        try:
            data_file = directory / "data.json"
            if data_file.exists():
                self.evaluator.add_data(json.loads(data_file.read_text(encoding="utf-8")))
            for path in policy_files(directory):
                self.evaluator.add_policy(path.name, path.read_text(encoding="utf-8"))
        except Exception as exc:
            self.error = f"policy could not be loaded: {type(exc).__name__}: {exc}"

    def decide(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        if self.error:
            return withhold(self.error, self.revision)
        from opa_bindings import OpaError  # loaded: the evaluator was built

        try:
            result = self.evaluator.eval_document(
                ENTRYPOINT.replace("/", "."), json.loads(json.dumps(policy_input, default=str))
            )
        except OpaError as exc:
            return withhold(f"policy gave no decision ({exc.code})", self.revision)
        except Exception as exc:  # anything else from the evaluator: nothing is released
            return withhold(f"policy evaluation failed: {type(exc).__name__}", self.revision)
        if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
            return withhold("policy decision has no boolean allow", self.revision)
        return {**result, "policy_revision": self.revision}

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()


def local_engine(directory: Path = POLICY_DIR) -> RegopyEngine | GoOpaEngine:
    """An in-process engine for `directory`: regopy, or OPA's Go evaluator where regopy cannot
    load (it needs libatomic, which slim containers lack)."""
    try:
        import regopy  # noqa: F401
    except (ImportError, OSError):
        return GoOpaEngine(directory)
    return RegopyEngine(directory)


def legal_data(directory: Path = POLICY_DIR) -> dict[str, Any]:
    """The policy data's legal parameters (data.legal), also used to validate consents."""
    return json.loads((directory / "data.json").read_text(encoding="utf-8"))["legal"]


class OpaEngine:
    """An OPA server through opa-python-client (containers). The broker uploads the same
    policy files and data the embedded engine uses, so both answer alike and the revision
    names what OPA evaluates. OPA unreachable or refusing the policy means withhold."""

    def __init__(self, url: str, directory: Path = POLICY_DIR, timeout: float = 2.0) -> None:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"EMA_OPA_URL must be http(s)://host:port, not {url!r}")
        self.url = url
        self.host, self.port = parsed.hostname, parsed.port or 8181
        self.ssl = parsed.scheme == "https"
        self.directory = directory
        self.timeout = timeout
        self.revision = revision(directory)
        self.error: str | None = "policy not yet loaded into OPA"
        self.client: Any = None

    async def load(self) -> None:
        from opa_client import AsyncOpaClient

        try:
            if self.client is None:
                self.client = AsyncOpaClient(
                    host=self.host, port=self.port, ssl=self.ssl, timeout=self.timeout, retries=1
                )
                await self.client.__aenter__()
            for path in policy_files(self.directory):
                await self.client.update_policy_from_string(
                    path.read_text(encoding="utf-8"), f"emaflyt/{path.stem}"
                )
            data_file = self.directory / "data.json"
            if data_file.exists():
                for key, value in json.loads(data_file.read_text(encoding="utf-8")).items():
                    await self.client.update_or_create_data(value, key)
            self.error = None
        except Exception as exc:
            self.error = f"policy could not be loaded into OPA at {self.url}: {type(exc).__name__}"

    async def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        if self.error:
            await self.load()  # OPA may have come up, or restarted empty
            if self.error:
                return withhold(self.error, self.revision)
        try:
            out = await self.client.query_rule(
                input_data=json.loads(json.dumps(policy_input, default=str)),
                package_path="ema/share",
                rule_name="decision",
            )
        except Exception as exc:
            self.error = f"policy engine unreachable at {self.url}: {type(exc).__name__}"
            return withhold(self.error, self.revision)
        result = out.get("result") if isinstance(out, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
            # An OPA that restarted has no policy: load it again on the next decision.
            self.error = "policy gave no decision in OPA (undefined)"
            return withhold(self.error, self.revision)
        return {**result, "policy_revision": self.revision}

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close_connection()


ENGINES = ("opa-go", "regopy", "opa")
DEFAULT_ENGINE = "opa-go"


class SelectedEngine:
    """The engine EMA_POLICY_ENGINE names (opa-go, the default; regopy; or opa, a server),
    behind one call."""

    def __init__(self) -> None:
        # Built when first needed: with EMA_POLICY_ENGINE=opa (or opa-go) regopy is never
        # loaded, so those paths do not depend on rego-cpp's native library (or its libatomic).
        self._current: RegopyEngine | GoOpaEngine | OpaEngine | None = None
        self.latency: Any = None  # a Prometheus histogram, set when the service starts

    @property
    def current(self) -> RegopyEngine | GoOpaEngine | OpaEngine:
        if self._current is None:
            self._current = GoOpaEngine()
        return self._current

    async def configure(self, name: str, opa_url: str | None) -> None:
        if name not in ENGINES:
            raise ValueError(f"EMA_POLICY_ENGINE must be one of {', '.join(ENGINES)}, not {name!r}")
        await self.close()
        if name == "opa":
            if not opa_url:
                raise ValueError("EMA_POLICY_ENGINE=opa needs EMA_OPA_URL")
            self._current = OpaEngine(opa_url)
            await self._current.load()
        elif name == "opa-go":
            self._current = GoOpaEngine()
        else:
            self._current = RegopyEngine()

    @property
    def name(self) -> str:
        if isinstance(self.current, OpaEngine):
            return "opa"
        return "opa-go" if isinstance(self.current, GoOpaEngine) else "regopy"

    async def close(self) -> None:
        current, self._current = self._current, None
        if isinstance(current, OpaEngine):
            await current.close()
        elif isinstance(current, GoOpaEngine):
            current.close()

    @property
    def error(self) -> str | None:
        return self.current.error

    @property
    def revision(self) -> str:
        return self.current.revision

    async def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        import time

        started = time.perf_counter()
        if isinstance(self.current, OpaEngine):
            result = await self.current.evaluate(policy_input)
        else:
            result = self.current.decide(policy_input)
        if self.latency is not None:
            self.latency.observe(time.perf_counter() - started)
        return result
