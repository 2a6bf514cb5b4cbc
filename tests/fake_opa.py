"""A stand-in for an OPA server: OPA's REST API in front of OPA's own Go evaluator
(opa-golib-python-bindings, a c-shared build of OPA's `rego` package). No `opa` binary can be
installed on these machines (real OPA runs in docker-compose), but the evaluator here is
OPA's, so what the broker gets back is what OPA decides. It serves what opa-python-client
uses: GET /health, PUT /v1/policies/{id}, PUT /v1/data/{path}, POST /v1/data/{path}.

    python -m tests.fake_opa --port 8181 [--delay 0.03]

`--delay` holds each evaluation that long, as a round trip to an OPA container would.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
from typing import Any

from aiohttp import web
from opa_bindings import OpaEngine, OpaError, OpaUndefinedError


class Store:
    """Policies and data as uploaded; the evaluator is rebuilt after a change, as OPA
    recompiles its bundle on every policy or data write."""

    def __init__(self) -> None:
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.queries = 0
        self._engine: OpaEngine | None = None

    def changed(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self._engine = None

    def engine(self) -> OpaEngine:
        if self._engine is None:
            engine = OpaEngine()
            engine.add_data(copy.deepcopy(self.data))
            for pid, src in sorted(self.policies.items()):
                engine.add_policy(pid, src)
            self._engine = engine
        return self._engine


def make_app(delay: float = 0.0) -> web.Application:
    store = Store()
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({})

    async def put_policy(request: web.Request) -> web.Response:
        pid, src = request.match_info["id"], await request.text()
        check = OpaEngine()
        try:  # OPA refuses a module it cannot parse (v0 syntax among others)
            check.add_policy(pid, src)
        except OpaError as exc:
            return web.json_response(
                {"code": "invalid_parameter", "message": str(exc)[:300]}, status=400
            )
        finally:
            check.close()
        store.policies[pid] = src
        store.changed()
        return web.json_response({})

    async def put_data(request: web.Request) -> web.Response:
        path = [p for p in request.match_info["path"].split("/") if p]
        value = await request.json()
        if not path:
            store.data = value
        else:
            node = store.data
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        store.changed()
        return web.Response(status=204)

    async def post_data(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        document = ".".join(p for p in request.match_info["path"].split("/") if p)
        store.queries += 1
        if delay:
            await asyncio.sleep(delay)
        try:
            result = store.engine().eval_document(document, body.get("input", {}))
        except OpaUndefinedError:
            return web.json_response({})  # OPA answers an undefined document without result
        except OpaError as exc:
            store.changed()
            return web.json_response(
                {"code": "internal_error", "message": str(exc)[:300]}, status=500
            )
        return web.json_response({"result": result})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {"policies": sorted(store.policies), "queries": store.queries, "evaluator": "opa-golib"}
        )

    app.router.add_get("/health", health)
    app.router.add_put("/v1/policies/{id:.*}", put_policy)
    app.router.add_put("/v1/data/{path:.*}", put_data)
    app.router.add_post("/v1/data/{path:.*}", post_data)
    app.router.add_get("/_stats", stats)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per evaluation")
    args = parser.parse_args()
    web.run_app(make_app(args.delay), host="127.0.0.1", port=args.port, print=None)
