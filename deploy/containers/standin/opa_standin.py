"""A STAND-IN for the OPA server, used only where no OPA image can be pulled (no registry is
reachable on the development machines). It is not OPA: it serves the part of OPA's REST API
that the consent broker uses (opa-python-client) and evaluates with OPA's own Go evaluator,
loaded through opa-golib-python-bindings. Installed as /opa so docker-compose.yml runs it with
the same command line as the real image:

    opa run --server --addr 0.0.0.0:8181     # GET /health, PUT/GET/DELETE /v1/policies/{id},
                                             # PUT/GET/POST /v1/data/{path}
    opa eval true                            # health probe: exit 0 when the server answers
    opa version
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError

VERSION = "emaflyt OPA stand-in (opa-golib-python-bindings 0.4.4), not OPA"


class Store:
    """Policies and data as OPA keeps them; an engine compiled from both after each write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.engine = self.compile(self.policies, self.data)

    @staticmethod
    def compile(policies: dict[str, str], data: dict[str, Any]) -> OpaEngine:
        engine = OpaEngine()
        for pid, source in sorted(policies.items()):
            engine.add_policy(pid, source)
        if data:
            engine.add_data(data)
        return engine

    def write(self, policies: dict[str, str], data: dict[str, Any]) -> None:
        """Replace policies and data together, or raise OpaError and keep what was there."""
        engine = self.compile(policies, data)
        with self.lock:
            self.policies, self.data, old, self.engine = policies, data, self.engine, engine
        old.close()


STORE: Store


def set_path(doc: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    if not path:
        return value
    out = json.loads(json.dumps(doc))
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return out


def get_path(doc: Any, path: list[str]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


class Handler(BaseHTTPRequestHandler):
    server_version = "opa-standin"

    def log_message(self, fmt: str, *args: Any) -> None:  # method and path only, no bodies
        sys.stderr.write(f"opa-standin: {self.command} {self.path.split('?')[0]}\n")

    def reply(self, status: int, body: Any = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if raw:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def error(self, status: int, code: str, message: str) -> None:
        self.reply(status, {"code": code, "message": message[:500]})

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def parts(self, prefix: str) -> list[str]:
        return [p for p in self.path.split("?")[0][len(prefix) :].split("/") if p]

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path == "/health":
            self.reply(200, {})
        elif path.startswith("/v1/policies"):
            pid = "/".join(self.parts("/v1/policies"))
            if not pid:
                listed = [{"id": k, "raw": v} for k, v in STORE.policies.items()]
                self.reply(200, {"result": listed})
            elif pid in STORE.policies:
                self.reply(200, {"result": {"id": pid, "raw": STORE.policies[pid]}})
            else:
                self.error(404, "resource_not_found", f"storage_not_found_error: policy id {pid}")
        elif path.startswith("/v1/data"):
            self.evaluate(self.parts("/v1/data"), None)
        else:
            self.error(404, "resource_not_found", path)

    def do_PUT(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        try:
            if path.startswith("/v1/policies/"):
                pid = "/".join(self.parts("/v1/policies"))
                STORE.write({**STORE.policies, pid: self.body().decode()}, STORE.data)
                self.reply(200, {})
            elif path.startswith("/v1/data"):
                value = json.loads(self.body() or b"null")
                STORE.write(STORE.policies, set_path(STORE.data, self.parts("/v1/data"), value))
                self.reply(204)
            else:
                self.error(404, "resource_not_found", path)
        except OpaError as exc:
            self.error(400, "invalid_parameter", str(exc))
        except ValueError as exc:
            self.error(400, "invalid_parameter", f"body is not JSON: {exc}")

    def do_DELETE(self) -> None:  # noqa: N802
        pid = "/".join(self.parts("/v1/policies"))
        if not self.path.startswith("/v1/policies/") or pid not in STORE.policies:
            self.error(404, "resource_not_found", self.path)
            return
        STORE.write({k: v for k, v in STORE.policies.items() if k != pid}, STORE.data)
        self.reply(200, {})

    def do_POST(self) -> None:  # noqa: N802
        if not self.path.startswith("/v1/data"):
            self.error(404, "resource_not_found", self.path)
            return
        try:
            request = json.loads(self.body() or b"{}")
        except ValueError as exc:
            self.error(400, "invalid_parameter", f"body is not JSON: {exc}")
            return
        self.evaluate(self.parts("/v1/data"), request.get("input"))

    def evaluate(self, path: list[str], policy_input: Any) -> None:
        engine = STORE.engine
        try:
            if not STORE.policies:  # base documents only
                self.reply(200, {"result": get_path(STORE.data, path)})
                return
            self.reply(200, {"result": engine.eval_document(".".join(path), policy_input)})
        except (OpaUndefinedError, KeyError, TypeError):
            self.reply(200, {})  # undefined: OPA answers without a result
        except OpaError as exc:
            self.error(500, "internal_error", str(exc))


def serve(addr: str) -> None:
    global STORE
    host, _, port = addr.rpartition(":")
    STORE = Store()
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    print(f"{VERSION}: listening on {addr}", file=sys.stderr, flush=True)
    server.serve_forever()


def main(argv: list[str]) -> int:
    if argv[:1] == ["version"]:
        print(VERSION)
        return 0
    if argv[:1] == ["eval"]:  # the image's health probe: is the server answering?
        try:
            urllib.request.urlopen("http://127.0.0.1:8181/health", timeout=2)
            return 0
        except OSError as exc:
            print(f"opa-standin not answering: {exc}", file=sys.stderr)
            return 1
    if argv[:1] == ["run"] and "--server" in argv:
        addr = "0.0.0.0:8181"
        for i, arg in enumerate(argv):
            if arg == "--addr" and i + 1 < len(argv):
                addr = argv[i + 1]
            elif arg.startswith("--addr="):
                addr = arg.split("=", 1)[1]
        serve(addr)
        return 0
    print(
        f"usage: opa run --server [--addr HOST:PORT] | opa eval true | opa version\n{VERSION}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
