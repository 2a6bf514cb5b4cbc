"""A stand-in for OPA's REST API, evaluating with regopy: no `opa` binary can be installed on
these machines (real OPA runs in docker-compose). It serves what opa-python-client uses:
GET /health, PUT /v1/policies/{id}, PUT /v1/data/{path}, POST /v1/data/{path}.

    python -m tests.fake_opa --port 8181
"""

from __future__ import annotations

import argparse

from aiohttp import web
from regopy import Interpreter


class Store:
    def __init__(self) -> None:
        self.policies: dict[str, str] = {}
        self.data: dict = {}
        self.queries = 0

    def interpreter(self) -> Interpreter:
        interp = Interpreter()
        interp.add_data(self.data)
        for pid, src in sorted(self.policies.items()):
            interp.add_module(pid.replace("/", "_") + ".rego", src)
        return interp


def make_app() -> web.Application:
    store = Store()
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({})

    async def put_policy(request: web.Request) -> web.Response:
        pid, src = request.match_info["id"], await request.text()
        try:
            Interpreter().add_module("check.rego", src)
        except Exception as exc:
            return web.json_response({"code": "invalid_parameter", "message": str(exc)[:300]},
                                     status=400)  # fmt: skip
        store.policies[pid] = src
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
        return web.Response(status=204)

    async def post_data(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        interp = store.interpreter()
        interp.set_input(body.get("input", {}))
        query = "data." + ".".join(p for p in request.match_info["path"].split("/") if p)
        out = interp.query(query)
        store.queries += 1
        if not out.ok():
            return web.json_response({"code": "internal_error", "message": str(out)}, status=500)
        if len(out) and out[0].expressions:
            return web.json_response({"result": out[0].expressions[0]})
        return web.json_response({})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"policies": sorted(store.policies), "queries": store.queries})

    app.router.add_get("/health", health)
    app.router.add_put("/v1/policies/{id:.*}", put_policy)
    app.router.add_put("/v1/data/{path:.*}", put_data)
    app.router.add_post("/v1/data/{path:.*}", post_data)
    app.router.add_get("/_stats", stats)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8181)
    web.run_app(make_app(), host="127.0.0.1", port=parser.parse_args().port, print=None)
