"""`emaflyt`: run the embedded system, see its state, and manage units."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from contracts.messages import UnitKind

DEFAULT_DATA = Path(os.environ.get("EMA_DATA_DIR", "data"))


def _nats_url(args: argparse.Namespace) -> str:
    if args.nats_url:
        return args.nats_url
    run_file = Path(args.data_dir) / "run.json"
    if run_file.exists():
        return json.loads(run_file.read_text())["nats_url"]
    return os.environ.get("EMA_NATS_URL", "nats://127.0.0.1:4222")


# -- up --------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from deploy.launcher import System

    system = System(Path(args.data_dir), nats_port=args.nats_port, monitor_port=args.monitor_port)
    print(f"emaflyt: starting nats-server and {len(system.services)} services "
          f"(data in {system.data_dir}) ...", flush=True)  # fmt: skip
    started = time.monotonic()
    try:
        system.up()
    except (Exception, KeyboardInterrupt) as exc:
        print(f"emaflyt: start failed: {exc!r}", file=sys.stderr)
        system.down()
        return 1
    print(f"emaflyt: up in {time.monotonic() - started:.1f}s\n")
    print(f"  {'nats-server':14s} {system.nats_url}  (monitor http://127.0.0.1:"
          f"{system.nats.monitor_port}, store {system.data_dir / 'nats'})")  # fmt: skip
    for name, proc in system.procs.items():
        print(f"  {name:14s} http://127.0.0.1:{proc.port}/healthz  "
              f"db {system.data_dir / (name + '.db')}  log {proc.log_path}")  # fmt: skip
    print("\n  status: emaflyt status    stop: Ctrl-C\n", flush=True)

    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        time.sleep(0.5)
        for name, proc in system.procs.items():
            if not proc.alive and not stopping:
                print(f"emaflyt: {name} exited (code {proc.proc.returncode if proc.proc else '?'})"
                      f"; restarting. Log: {proc.log_path}", flush=True)  # fmt: skip
                system.start_service(name, wait=False)
    print("emaflyt: stopping ...", flush=True)
    system.down()
    print("emaflyt: stopped; data kept in", system.data_dir)
    return 0


# -- status ----------------------------------------------------------------------------------


async def _status(args: argparse.Namespace) -> int:
    import nats
    from nats.js.errors import NotFoundError

    from contracts.registry import STREAMS

    url = _nats_url(args)
    try:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    except Exception as exc:
        print(f"cannot reach NATS at {url}: {exc}. Is the system up (`make up`)?")
        return 1
    js = nc.jetstream()
    report: dict = {"nats_url": url, "streams": {}, "dead_letters": {}, "services": {}}
    for stream in STREAMS:
        try:
            info = await js.stream_info(stream.name)
        except NotFoundError:
            report["streams"][stream.name] = None
            continue
        consumers = {}
        for ci in await js.consumers_info(stream.name):
            consumers[ci.name] = {"pending": ci.num_pending, "ack_pending": ci.num_ack_pending,
                                  "redelivered": ci.num_redelivered}  # fmt: skip
        report["streams"][stream.name] = {"messages": info.state.messages,
                                          "consumers": consumers}  # fmt: skip
    if report["streams"].get("DLQ"):
        report["dead_letters"] = await _dead_letters(js, limit=args.dlq_limit)
    run_file = Path(args.data_dir) / "run.json"
    if run_file.exists():
        from deploy.launcher import http_json

        for name, base in json.loads(run_file.read_text())["services"].items():
            try:
                report["services"][name] = http_json(base + "/healthz")
            except Exception as exc:
                report["services"][name] = {"status": "unreachable", "error": str(exc)}
    await nc.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"NATS {url}")
    for name, s in report["streams"].items():
        if s is None:
            print(f"  stream {name:13s} missing")
            continue
        print(f"  stream {name:13s} {s['messages']:>8} msgs")
        for cname, c in s["consumers"].items():
            print(f"    consumer {cname:26s} lag {c['pending']:>6}  unacked {c['ack_pending']:>4}"
                  f"  redelivered {c['redelivered']:>4}")  # fmt: skip
    dl = report["dead_letters"]
    print(f"dead letters: {dl.get('count', 0)}")
    for item in dl.get("recent", []):
        print(f"  #{item['seq']} {item['subject']} [{item['consumer']}] {item['reason']}")
    for name, h in report["services"].items():
        extra = ", ".join(f"{c}: {v['handled']} handled/{v['dead_lettered']} dead"
                          for c, v in h.get("consumers", {}).items())  # fmt: skip
        print(f"service {name:13s} {h.get('status')}  outbox pending {h.get('outbox_pending')}"
              f"  {extra}")  # fmt: skip
    return 0


async def _dead_letters(js, limit: int = 10) -> dict:  # noqa: ANN001
    from nats.js.errors import NotFoundError

    info = await js.stream_info("DLQ")
    recent = []
    first = max(info.state.first_seq, info.state.last_seq - limit + 1)
    for seq in range(first, info.state.last_seq + 1) if info.state.messages else []:
        try:
            msg = await js.get_msg("DLQ", seq)
        except NotFoundError:
            continue
        h = msg.headers or {}
        recent.append({"seq": seq, "subject": h.get("Ema-Dlq-Subject"),
                       "consumer": h.get("Ema-Dlq-Consumer"), "reason": h.get("Ema-Dlq-Reason"),
                       "msg_id": h.get("Ema-Dlq-Original-Msg-Id")})  # fmt: skip
    return {"count": info.state.messages, "recent": recent}


# -- units -----------------------------------------------------------------------------------


async def _unit_register(args: argparse.Namespace) -> int:
    import nats

    from services.kit.directory import Directory, bucket
    from services.kit.signing import UnitKey, kid_for

    if args.generate_key:
        if not args.key_out:
            print("--generate-key needs --key-out PATH for the private key", file=sys.stderr)
            return 2
        key = UnitKey.generate(args.id)
        key.save(Path(args.key_out))
        public_b64, kid = key.public_b64, key.kid
        print(f"private key written to {args.key_out} (mode 600): keep it with the unit")
    elif args.public_key:
        import base64

        try:
            raw = base64.b64decode(args.public_key, validate=True)
            if len(raw) != 32:
                raise ValueError(f"{len(raw)} bytes, expected 32")
        except ValueError as exc:
            print(f"--public-key: not a base64 raw Ed25519 public key ({exc})", file=sys.stderr)
            return 2
        public_b64, kid = args.public_key, kid_for(raw)
    else:
        print("give --public-key B64 or --generate-key --key-out PATH", file=sys.stderr)
        return 2
    nc = await nats.connect(_nats_url(args), connect_timeout=2, max_reconnect_attempts=0)
    from services.kit.bus import ensure_streams

    js = nc.jetstream()
    await ensure_streams(js)
    directory = Directory(await bucket(js))
    try:
        unit = await directory.add_key(args.id, args.name, UnitKind(args.kind), kid, public_b64)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        await nc.close()
        return 2
    if args.sealing_key:
        unit.sealing_key = args.sealing_key
        await directory.put(unit)
    await nc.close()
    print(f"unit {unit.id} ({unit.kind.value}) registered; key id {unit.id}/{kid}")
    print(f"public key {public_b64}")
    return 0


async def _unit_list(args: argparse.Namespace) -> int:
    import nats

    from services.kit.directory import Directory, bucket

    nc = await nats.connect(_nats_url(args), connect_timeout=2, max_reconnect_attempts=0)
    directory = Directory(await bucket(nc.jetstream()))
    for unit in sorted(await directory.all(), key=lambda u: u.id):
        kids = ", ".join(k.kid + (" (revoked)" if k.revoked else "") for k in unit.keys)
        print(f"{unit.id:28s} {unit.kind.value:15s} {unit.name}  keys: {kids}")
    await nc.close()
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from services.kit.signing import UnitKey

    key = UnitKey.generate(args.id)
    key.save(Path(args.out))
    print(json.dumps({"unit": args.id, "kid": key.kid, "public_key": key.public_b64,
                      "private_key_file": args.out}))  # fmt: skip
    return 0


# -- consent ---------------------------------------------------------------------------------


def cmd_consent_verify(args: argparse.Namespace) -> int:
    """Verify the consent broker's Merkle log (or one record) in the SQLite file."""
    from services.consent.log import prove_record, verify_log
    from services.kit.signing import UnitKey

    data_dir = Path(args.data_dir)
    db, key_file = data_dir / "consent.db", data_dir / "keys" / "svc-consent.pem"
    for path in (db, key_file):
        if not path.exists():
            print(f"{path} not found: give --data-dir of the system", file=sys.stderr)
            return 2
    public = UnitKey.load("svc-consent", key_file).public_b64
    if args.record:
        result = prove_record(db, public, args.record)
        print(json.dumps(result) if args.json else
              f"record {args.record}: " + ("included" if result["ok"] else result["problem"])
              + (f" (index {result['index']}, tree size {result['tree_size']})"
                 if "index" in result else ""))  # fmt: skip
        return 0 if result["ok"] else 1
    report = verify_log(db, public)
    if args.json:
        print(json.dumps({"ok": report.ok, "size": report.size, "signed_size": report.signed_size,
                          "problems": report.problems}))  # fmt: skip
    else:
        print(f"log: {report.size} records, signed tree head at size {report.signed_size}")
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        print("ok: every record matches the signed tree heads" if report.ok else "FAILED")
    return 0 if report.ok else 1


# -- parser ----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emaflyt", description=__doc__)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="data folder (default: data)")
    p.add_argument("--nats-url", default=None, help="NATS URL (default: from the running system)")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start nats-server and every service on loopback")
    up.add_argument("--nats-port", type=int, default=4222)
    up.add_argument("--monitor-port", type=int, default=8222)
    up.set_defaults(func=cmd_up)

    st = sub.add_parser("status", help="streams, consumer lag, dead letters, service health")
    st.add_argument("--json", action="store_true")
    st.add_argument("--dlq-limit", type=int, default=10, help="recent dead letters to show")
    st.set_defaults(func=lambda a: asyncio.run(_status(a)))

    unit = sub.add_parser("unit", help="the unit directory").add_subparsers(
        dest="unit_cmd", required=True
    )
    reg = unit.add_parser("register", help="register a unit and its public key")
    reg.add_argument("--id", required=True, help="unit id, e.g. centre-oslo or kommune-0301")
    reg.add_argument("--name", required=True)
    reg.add_argument("--kind", required=True, choices=[k.value for k in UnitKind])
    reg.add_argument("--public-key", help="base64 raw Ed25519 public key")
    reg.add_argument("--generate-key", action="store_true", help="create a key pair")
    reg.add_argument("--key-out", help="where to write the private key (with --generate-key)")
    reg.add_argument("--sealing-key", help="base64 raw X25519 key to receive released data")
    reg.set_defaults(func=lambda a: asyncio.run(_unit_register(a)))
    ls = unit.add_parser("list", help="list registered units")
    ls.set_defaults(func=lambda a: asyncio.run(_unit_list(a)))
    kg = unit.add_parser("keygen", help="create a key pair without registering it")
    kg.add_argument("--id", required=True)
    kg.add_argument("--out", required=True)
    kg.set_defaults(func=cmd_keygen)

    consent = sub.add_parser("consent", help="the consent broker").add_subparsers(
        dest="consent_cmd", required=True
    )
    ver = consent.add_parser("verify", help="verify the decision log, or one record")
    ver.add_argument("--record", help="decision or consent id: check its inclusion proof")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_consent_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
