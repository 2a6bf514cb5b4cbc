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
from typing import Any

from deploy import operator
from deploy.launcher import SERVICES

DEFAULT_DATA = Path(os.environ.get("EMA_DATA_DIR", "data"))


def witnesses_of(args: argparse.Namespace, report: Any, verifiers: list[Any]) -> str | None:
    """Ask the witnesses on the system's bus (None), or say why they were not asked."""
    from services.consent.witnesses import check_over_bus

    if args.no_witnesses:
        return "--no-witnesses"
    url = (
        args.nats_url
        or operator.run_info(Path(args.data_dir)).get("nats_url")
        or os.environ.get("EMA_NATS_URL")
    )
    if url is None:
        return "no bus known for this data folder: give --nats-url (or --no-witnesses)"
    trust = operator.trust(args)
    pinned = Path(args.witnesses) if args.witnesses else None
    options = trust.connect_options() if trust else {}
    return asyncio.run(check_over_bus(url, report, verifiers, pinned, options=options))


# -- up --------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from deploy.launcher import System

    system = System(Path(args.data_dir), nats_port=args.nats_port, monitor_port=args.monitor_port)
    print(
        f"emaflyt: starting nats-server and {len(system.services)} services "
        f"(data in {system.data_dir}) ...",
        flush=True,
    )
    started = time.monotonic()
    try:
        system.up()
    except (Exception, KeyboardInterrupt) as exc:
        print(f"emaflyt: start failed: {exc!r}", file=sys.stderr)
        system.down()
        return 1
    print(f"emaflyt: up in {time.monotonic() - started:.1f}s\n")
    print(
        f"  {'nats-server':14s} {system.nats.url}  (monitor http://127.0.0.1:"
        f"{system.nats.monitor_port}, store {system.data_dir / 'nats'}; every service and "
        f"unit logs in as itself, the operator's keys in {system.trust_dir})"
    )
    for name, proc in system.procs.items():
        print(
            f"  {name:14s} http://127.0.0.1:{proc.port}/healthz  "
            f"db {safe_url(system.database_url(proc.name))}  log {proc.log_path}"
        )
    print(
        "\n  status: emaflyt status    stop: Ctrl-C in this terminal (or SIGINT/SIGTERM to "
        "the emaflyt process; `make` itself does not pass a bare SIGINT on)\n",
        flush=True,
    )

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
                print(
                    f"emaflyt: {name} exited (code {proc.proc.returncode if proc.proc else '?'})"
                    f"; restarting. Log: {proc.log_path}",
                    flush=True,
                )
                system.start_service(name, wait=False)
    print("emaflyt: stopping ...", flush=True)
    system.down()
    print("emaflyt: stopped; data kept in", system.data_dir)
    return 0


# -- status ----------------------------------------------------------------------------------


async def _status(args: argparse.Namespace) -> int:
    from nats.js.errors import NotFoundError

    from contracts.registry import STREAMS
    from services.kit.bus import redact

    url = redact(operator.nats_url(args))
    nc = await operator.connect(args)
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
            consumers[ci.name] = {
                "pending": ci.num_pending,
                "ack_pending": ci.num_ack_pending,
                "redelivered": ci.num_redelivered,
            }
        report["streams"][stream.name] = {"messages": info.state.messages, "consumers": consumers}
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
            print(
                f"    consumer {cname:26s} lag {c['pending']:>6}  unacked {c['ack_pending']:>4}"
                f"  redelivered {c['redelivered']:>4}"
            )
    dl = report["dead_letters"]
    print(f"dead letters: {dl.get('count', 0)}")
    for item in dl.get("recent", []):
        print(f"  #{item['seq']} {item['subject']} [{item['consumer']}] {item['reason']}")
    for name, h in report["services"].items():
        extra = ", ".join(
            f"{c}: {v['handled']} handled/{v['dead_lettered']} dead"
            for c, v in h.get("consumers", {}).items()
        )
        print(
            f"service {name:13s} {h.get('status')}  outbox pending {h.get('outbox_pending')}"
            f"  {extra}"
        )
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
        recent.append(
            {
                "seq": seq,
                "subject": h.get("Ema-Dlq-Subject"),
                "consumer": h.get("Ema-Dlq-Consumer"),
                "reason": h.get("Ema-Dlq-Reason"),
                "msg_id": h.get("Ema-Dlq-Original-Msg-Id"),
            }
        )
    return {"count": info.state.messages, "recent": recent}


def cmd_token_issue(args: argparse.Namespace) -> int:
    trust = operator.trust(args)
    if trust is None:
        print("no trust folder in --data-dir: this system issues no tokens", file=sys.stderr)
        return 2
    try:
        print(trust.api_token(args.subject, args.role, args.unit, args.hours))
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    return 0


# -- case timeline and figures ---------------------------------------------------------------


def _service_url(args: argparse.Namespace, name: str) -> str:
    run_file = Path(args.data_dir) / "run.json"
    if run_file.exists():
        return json.loads(run_file.read_text())["services"][name]
    from services.kit.settings import DEFAULT_PORTS

    return f"http://127.0.0.1:{DEFAULT_PORTS[name]}"


def _token(args: argparse.Namespace, role: str) -> dict[str, str]:
    """The API bearer token the command calls with: --token / EMA_API_TOKEN, else one the
    operator's tooling issues for this call (as `emaflyt-cli`)."""
    token = getattr(args, "token", None) or os.environ.get("EMA_API_TOKEN")
    trust = operator.trust(args)
    if not token and trust is not None:
        token = trust.api_token("emaflyt-cli", role, hours=0.25)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get(url: str, args: argparse.Namespace, role: str = "operator") -> tuple[int, object]:
    import urllib.error
    import urllib.request

    try:
        request = urllib.request.Request(url, headers=_token(args, role))
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (own service)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        print(f"cannot reach {url}: {exc}. Is the system up (`make up`)?", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_timeline(args: argparse.Namespace) -> int:
    status, body = _get(f"{_service_url(args, 'planning')}/cases/{args.case_id}/timeline", args)
    if status != 200:
        print(f"no case {args.case_id} in planning ({status})", file=sys.stderr)
        return 1
    assert isinstance(body, dict)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    case = body["case"]
    print(
        f"{case['case_ref']} ({case['case_id']}) at {case['care_centre']}, arrived "
        f"{case['arrival']}"
        + (f", closed {case['closed_on']} ({case['closed']})" if case["closed"] else "")
    )
    print("happened:")
    for e in body["happened"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items())
        print(f"  {e['on']}  {e['kind']:24s} {detail}")
    print("due:")
    for t in body["due"]:
        print(
            f"  {t['due']}  {t['task']:24s} {t['status']:9s} {t['responsible_unit']}"
            f"  ({t['strength']}: {t['legal_ref']})"
        )
    print("late:")
    for t in body["late"]:
        done = f"done {t['done_on']}" if t["done_on"] else "not done"
        print(f"  {t['due']}  {t['task']:24s} {t['days_late']} days late, {done}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    _, body = _get(f"{_service_url(args, 'planning')}/figures", args)
    assert isinstance(body, dict)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    print(f"as of {body['as_of']}: {body['overdue_total']} deadlines overdue now")
    for task, count in body["overdue_now"].items():
        print(f"  overdue {task:24s} {count}")
    print("deadlines met, per task and care centre:")
    for row in body["deadlines_met"]:
        print(
            f"  {row['task']:24s} {row['care_centre']:24s} {row['share_met']:6.1%} "
            f"({row['met']} met, {row['missed']} missed)"
        )
    wait = body["residence_to_settlement_days"]
    print(
        f"residence to settlement: {wait['settled']} settled, median {wait['median']} days, "
        f"max {wait['max']}, within 3 months {wait['share_within_3_months']}"
    )
    return 0


# -- notify ----------------------------------------------------------------------------------


def cmd_notify_recipient(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    body = {
        "unit": args.unit,
        "role": args.role,
        "language": args.language,
        "events": args.events or [],
        "digest": not args.no_digest,
    }
    for name in ("email", "webhook_url", "webhook_secret"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    req = urllib.request.Request(
        f"{_service_url(args, 'notify')}/recipients",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **_token(args, "administrator")},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (own service)
            print(json.dumps(json.loads(resp.read()), ensure_ascii=False))
    except urllib.error.HTTPError as exc:
        print(f"refused: {json.loads(exc.read()).get('error')}", file=sys.stderr)
        return 2
    return 0


def cmd_notify_inbox(args: argparse.Namespace) -> int:
    role = f"?role={args.role}" if args.role else ""
    _, rows = _get(f"{_service_url(args, 'notify')}/inbox/{args.unit}{role}", args)
    assert isinstance(rows, list)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for n in rows:
        print(f"{n['created_at'][:16]}  {n['role']:16s} {n['text_' + args.language]}")
    return 0


def cmd_notify_deliveries(args: argparse.Namespace) -> int:
    status = f"?status={args.status}" if args.status else ""
    _, body = _get(f"{_service_url(args, 'notify')}/deliveries{status}", args)
    assert isinstance(body, dict)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    print("  ".join(f"{k}: {v}" for k, v in sorted(body["counts"].items())) or "no deliveries")
    for d in body["deliveries"][:50]:
        print(
            f"  {d['status']:9s} {d['channel']:8s} {d['unit']}/{d['role']} {d['case_ref']} "
            f"{d['event']} attempts {d['attempts']} {d['last_error'] or ''}"
        )


def cmd_settlement(args: argparse.Namespace) -> int:
    """Children waiting for settlement (oldest deadline first) or settlement figures."""
    import urllib.parse

    base = _service_url(args, "municipality")
    if args.settlement_cmd == "waiting":
        query = f"?region={urllib.parse.quote(args.region)}" if args.region else ""
        _, body = _get(f"{base}/waiting{query}", args)
        if args.json:
            print(json.dumps(body, indent=2, ensure_ascii=False))
            return 0
        assert isinstance(body, list)
        print(f"{len(body)} children ready for settlement, oldest deadline first:")
        for c in body:
            print(
                f"  {c['deadline']}  {c['days_left']:>4} days left  {c['case_ref'] or '-':12s} "
                f"{c['bufetat_region']:11s} {c['measure']}"
                + ("  (offer pending)" if c["offer_pending"] else "")
            )
        return 0
    _, body = _get(f"{base}/figures", args)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    assert isinstance(body, dict)
    pct = body["settled_within_3_months_pct"]
    print(
        f"as of {body['as_of']}: {body['settled']} settled, "
        f"{'-' if pct is None else f'{pct} %'} within 3 months; {body['waiting']} waiting, "
        f"median {body['days_waiting']['median']} days, max {body['days_waiting']['max']}"
    )
    for region, n in sorted(body["waiting_per_region"].items()):
        print(f"  waiting in {region:11s} {n}")
    print("capacity gap (waiting - free places) per region and measure:")
    for g in body["capacity_gap"]:
        print(
            f"  {g['bufetat_region']:11s} {g['measure']:24s} {g['gap']:>4} "
            f"({g['waiting']} waiting, {g['free_places']} free)"
        )
    return 0


# -- database --------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db(args: argparse.Namespace) -> int:
    """Migrate each service's database (EMA_DATABASE_URL, a template with {service}, or the
    SQLite files in --data-dir), or show where each stands. Services also upgrade at start."""
    from services.kit import migrations
    from services.kit.db import make_engine
    from services.kit.settings import Settings

    if args.db_cmd == "revision":
        path = migrations.new_revision(args.service, args.message)
        print(f"{args.service}: wrote {path}; review it, then `emaflyt db upgrade`")
        return 0
    env = {**os.environ, "EMA_DATA_DIR": args.data_dir}
    if args.url:
        env["EMA_DATABASE_URL"] = args.url

    async def one(name: str) -> str:
        url = Settings.from_env(name, env).database_url or ""
        engine = make_engine(url)
        try:
            if args.db_cmd == "upgrade":
                done = await migrations.upgrade(engine, name, args.revision)
                state = "; ".join(done) or "already at " + str(await migrations.current(engine))
            else:
                now, head = await migrations.current(engine), migrations.head(name)
                state = f"at {now or 'nothing'}" + ("" if now == head else f", head is {head}")
        finally:
            await engine.dispose()
        return f"{name:14s} {safe_url(url)}: {state}"

    for name in args.service or SERVICES:
        print(asyncio.run(one(name)), flush=True)
    return 0


async def unit_connect(args: argparse.Namespace, key):  # noqa: ANN001, ANN201
    """Connect as a unit: its own NATS user (the JWT the operator issued for this key)."""
    import nats

    from deploy.provision import unit_jwt_path
    from deploy.trust import connect_options

    jwt_path = (
        Path(args.jwt)
        if getattr(args, "jwt", None)
        else unit_jwt_path(Path(args.data_dir), key.unit_id, key.kid)
    )
    options = {}
    if jwt_path.exists():
        options = connect_options(
            jwt_path.read_text().strip(), key.private, f"_INBOX_{key.unit_id}"
        )
    elif operator.trust(args) is not None:
        raise SystemExit(
            f"no NATS user JWT for {key.key_id} at {jwt_path}: give --jwt, or ask "
            "the operator (emaflyt unit credentials --id ...)"
        )
    try:
        return await nats.connect(
            servers=operator.servers(args), connect_timeout=2, allow_reconnect=False, **options
        )
    except Exception as exc:
        raise SystemExit(f"cannot reach NATS as {key.unit_id}: {exc}") from None


# -- consent ---------------------------------------------------------------------------------


def cmd_consent_verify(args: argparse.Namespace) -> int:
    """Verify the consent broker's Merkle log (or one record) in its database: the SQLite
    file in --data-dir, or EMA_DATABASE_URL (a template with {service} or consent's own),
    with the log's public keys only (--log-keys); then ask the witnesses what they cosigned."""
    from services.consent.verification import (
        database_of,
        keys_file_of,
        load_verifiers,
        prove_record,
        verify_log,
    )

    data_dir = Path(args.data_dir)
    keys_file = keys_file_of(data_dir, args.log_keys)
    db = database_of(data_dir)
    for path in (db, keys_file):
        if isinstance(path, Path) and not path.exists():
            print(
                f"{path} not found: give --data-dir of the system (and --log-keys)", file=sys.stderr
            )
            return 2
    verifiers = load_verifiers(keys_file)
    if args.record:
        result = prove_record(db, verifiers, args.record)
        print(
            json.dumps(result)
            if args.json
            else f"record {args.record}: "
            + ("included" if result["ok"] else result["problem"])
            + (
                f" (index {result['index']}, tree size {result['tree_size']})"
                if "index" in result
                else ""
            )
        )
        return 0 if result["ok"] else 1
    report = verify_log(db, verifiers)
    skipped = witnesses_of(args, report, verifiers)
    if args.json:
        print(json.dumps({**report.as_json(), "witnesses_skipped": skipped}))
    else:
        from services.consent.witnesses import print_witnesses

        print(f"log: {report.size} records, signed tree head at size {report.signed_size}")
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        print_witnesses(report, skipped)
        print(
            "ok: every record matches the signed tree heads and every table row its record"
            if report.ok
            else "FAILED"
        )
    return 0 if report.ok else 1


def cmd_consent_log_key(args: argparse.Namespace) -> int:
    """Make the decision log's next signing key and print its public key (vkey) for the
    witnesses and the log's key list; the service signs with it after a restart."""
    from services.consent.log import load_or_create_signer

    out = Path(args.out)
    if out.exists():
        print(f"{out} exists: choose a new file for the new key", file=sys.stderr)
        return 2
    keys_file = (
        Path(args.keys_file)
        if args.keys_file
        else Path(args.data_dir) / "keys" / ("consent-log.vkeys")
    )
    signer = load_or_create_signer(args.origin, out, keys_file)
    print(signer.verifier.vkey)
    return 0


async def _consent_send(args: argparse.Namespace) -> int:
    """Sign and publish a consent grant or withdrawal as a unit, then wait for the broker's
    acknowledgement (no.ema.consent.recorded.v1) or the dead letter that says why not."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from contracts.messages import ConsentGrantedV1, ConsentWithdrawnV1
    from services.kit.outbox import build_event
    from services.kit.signing import UnitKey

    try:
        if args.consent_cmd == "grant":
            type_ = "no.ema.consent.granted.v1"
            data: ConsentGrantedV1 | ConsentWithdrawnV1 = ConsentGrantedV1.model_validate_json(
                Path(args.file).read_bytes()
            )
        else:
            type_ = "no.ema.consent.withdrawn.v1"
            data = ConsentWithdrawnV1(
                consent_id=args.consent,
                case_id=args.case,
                withdrawn_by=args.by,
                withdrawn_at=args.at or datetime.now(UTC),
            )
        key = UnitKey.load(args.unit, Path(args.key))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"invalid {type_}: {problems}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"cannot read the input: {exc}", file=sys.stderr)
        return 2
    subject, event, body, headers = build_event(key, type_, data, case_id=data.case_id)
    # The unit publishes as itself (its NATS user, issued at registration); the operator's
    # connection hears the dead-letter stream, which units cannot read.
    nc = await unit_connect(args, key)
    ops = await operator.connect(args) if operator.trust(args) else nc
    outcome: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_recorded(msg) -> None:  # noqa: ANN001
        ev = json.loads(msg.data)
        if ev.get("correlationid") == event.id and not outcome.done():
            outcome.set_result(("recorded", ev["data"]))

    async def on_dead_letter(msg) -> None:  # noqa: ANN001
        h = msg.headers or {}
        if h.get("Ema-Dlq-Original-Msg-Id") == event.id and not outcome.done():
            outcome.set_result(("dead", h.get("Ema-Dlq-Reason") or "no reason given"))

    # Listen before publishing, so neither answer can be missed.
    await nc.subscribe(f"ema.consent.recorded.{args.unit}", cb=on_recorded)
    await ops.subscribe("ema.dlq.>", cb=on_dead_letter)
    await nc.flush()
    await ops.flush()
    try:
        ack = await nc.jetstream().publish(subject, body, headers=headers, timeout=5)
        print(f"published {type_} {event.id} as {key.key_id} (stream {ack.stream} seq {ack.seq})")
        kind, detail = await asyncio.wait_for(outcome, args.wait)
    except TimeoutError:
        print(
            f"no answer from the consent broker within {args.wait:g}s: see `emaflyt status` "
            "and `emaflyt dlq list --consumer consent-consents`",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:
        print(f"publish failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await nc.close()
        await ops.close()
    if kind == "dead":
        print(f"REFUSED by the consent broker: {detail}", file=sys.stderr)
        return 1
    print(
        f"consent {detail['consent_id']} version {detail['version']} recorded: "
        f"{detail['status']} (log index {detail['log_index']}, "
        f"{detail['record_hash']})"
    )
    return 0


def cmd_consent_export(args: argparse.Namespace) -> int:
    """A case's consents as FHIR R4 Consents (a collection Bundle), JSON or CSV."""
    from services.consent.fhir import to_csv

    base = f"{_service_url(args, 'consent')}/cases/{args.case_id}/consents"
    status, body = _get(base + ("/fhir" if args.format == "fhir" else ""), args, "privacy_officer")
    if status != 200:
        print(f"consent service answered {status}: {body}", file=sys.stderr)
        return 1
    assert isinstance(body, (list, dict))
    if args.format == "csv":
        assert isinstance(body, list)
        text = to_csv(body)
    else:
        text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        count = body["total"] if isinstance(body, dict) else len(body)
        print(f"{count} consents of case {args.case_id} written to {args.out} ({args.format})")
    else:
        sys.stdout.write(text)
    return 0


# -- dead letters and keys --------------------------------------------------------------------

REPLAY_DROP = ("Ema-Dlq-", "Nats-Msg-Id", "Nats-Expected")


async def _dlq(args: argparse.Namespace) -> int:
    from nats.js.errors import NotFoundError

    nc = await operator.connect(args)
    js = nc.jetstream(timeout=10)
    info = await js.stream_info("DLQ")
    chosen = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []:
        try:
            msg = await js.get_msg("DLQ", seq)
        except NotFoundError:
            continue
        h = dict(msg.headers or {})
        if args.consumer and h.get("Ema-Dlq-Consumer") != args.consumer:
            continue
        if args.seq and seq not in args.seq:
            continue
        chosen.append((seq, msg, h))
    if args.dlq_cmd == "list":
        for seq, _, h in chosen:
            print(
                f"#{seq} {h.get('Ema-Dlq-Subject')} [{h.get('Ema-Dlq-Consumer')}] "
                f"attempts {h.get('Ema-Dlq-Attempts')}: {h.get('Ema-Dlq-Reason')}"
            )
        print(f"{len(chosen)} dead letters")
    else:
        if not (args.seq or args.consumer or args.all):
            print("say which: --seq N [N ...], --consumer NAME or --all", file=sys.stderr)
            await nc.close()
            return 2
        for seq, msg, h in chosen:
            subject = h.get("Ema-Dlq-Subject")
            if not subject or subject.startswith("notify.delivery"):
                print(f"#{seq}: not a bus message ({subject}); skipped")
                continue
            if h.get("Ema-Dlq-Body-Omitted"):
                print(
                    f"#{seq}: its body was too large to keep ({h['Ema-Dlq-Body-Omitted']}); skipped"
                )
                continue
            headers = {k: v for k, v in h.items() if not k.startswith(REPLAY_DROP)}
            headers["Nats-Msg-Id"] = f"replay:{seq}"
            headers["Ema-Replayed-From"] = f"DLQ#{seq}"
            trust = operator.trust(args)
            body = trust.open_dead_letter(msg.data, h) if trust else msg.data
            await js.publish(subject, body, headers=headers)
            await js.delete_msg("DLQ", seq)
            print(f"#{seq} replayed to {subject}")
    await nc.close()
    return 0


# -- parser ----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    from deploy.partner_check import add_parser as add_partner_parser
    from deploy.unit_cli import add_parser as add_unit_parser

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

    case = sub.add_parser("case", help="a child's case").add_subparsers(
        dest="case_cmd", required=True
    )
    tl = case.add_parser("timeline", help="what happened, what is due, what was late")
    tl.add_argument("case_id")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(func=cmd_timeline)
    fig = sub.add_parser(
        "figures",
        help="deadlines met per type and centre, overdue now, days from residence to settlement",
    )
    fig.add_argument("--json", action="store_true")
    fig.set_defaults(func=cmd_figures)

    notify = sub.add_parser("notify", help="recipients, inboxes and deliveries").add_subparsers(
        dest="notify_cmd", required=True
    )
    rec = notify.add_parser("recipient", help="add or change who hears what at a unit")
    rec.add_argument("--unit", required=True)
    rec.add_argument("--role", required=True, help="contact_person, centre_leader, ...")
    rec.add_argument("--email")
    rec.add_argument("--webhook-url")
    rec.add_argument("--webhook-secret")
    rec.add_argument("--language", default="nb", choices=["nb", "en"])
    rec.add_argument("--events", nargs="*", help="task.due_soon task.due task.overdue ...")
    rec.add_argument("--no-digest", action="store_true")
    rec.set_defaults(func=cmd_notify_recipient)
    ibx = notify.add_parser("inbox", help="a unit's notifications")
    ibx.add_argument("unit")
    ibx.add_argument("--role")
    ibx.add_argument("--language", default="nb", choices=["nb", "en"])
    ibx.add_argument("--json", action="store_true")
    ibx.set_defaults(func=cmd_notify_inbox)
    dl = notify.add_parser("deliveries", help="email and webhook delivery status")
    dl.add_argument("--status", choices=["pending", "retrying", "sent", "failed"])
    dl.add_argument("--json", action="store_true")
    dl.set_defaults(func=cmd_notify_deliveries)
    st_ = sub.add_parser("settlement", help="children waiting; settlement figures")
    st_ = st_.add_subparsers(dest="settlement_cmd", required=True)
    wt = st_.add_parser("waiting", help="children ready for settlement, oldest deadline first")
    wt.add_argument("--region", help="Bufetat region, e.g. øst")
    wt.add_argument("--json", action="store_true")
    wt.set_defaults(func=cmd_settlement)
    sf = st_.add_parser("figures", help="settled within 3 months, waiting, capacity gap")
    sf.add_argument("--json", action="store_true")
    sf.set_defaults(func=cmd_settlement)

    add_unit_parser(sub)
    add_partner_parser(sub)
    tok = sub.add_parser("token", help="API bearer tokens").add_subparsers(
        dest="token_cmd", required=True
    )
    ti = tok.add_parser("issue", help="issue a bearer token for the services' HTTP APIs")
    ti.add_argument(
        "--role", required=True, choices=["operator", "privacy_officer", "administrator", "unit"]
    )
    ti.add_argument("--subject", required=True, help="who it is for (a person or system)")
    ti.add_argument("--unit", help="with --role unit: the unit id it speaks for")
    ti.add_argument("--hours", type=float, default=8.0, help="lifetime (default 8)")
    ti.set_defaults(func=cmd_token_issue)
    dlq = sub.add_parser("dlq", help="dead letters: list, and replay after a fix")
    dlq_sub = dlq.add_subparsers(dest="dlq_cmd", required=True)
    for name, text in (
        ("list", "show dead letters with reasons"),
        (
            "replay",
            "publish dead letters again to their subjects, then remove "
            "them from the dead-letter stream",
        ),
    ):
        cmd = dlq_sub.add_parser(name, help=text)
        cmd.add_argument("--consumer", help="only those of this consumer, e.g. intake-inbound")
        cmd.add_argument("--seq", type=int, nargs="*", help="only these DLQ sequence numbers")
        if name == "replay":
            cmd.add_argument("--all", action="store_true", help="every dead letter")
        cmd.set_defaults(func=lambda a: asyncio.run(_dlq(a)))

    consent = sub.add_parser("consent", help="the consent broker").add_subparsers(
        dest="consent_cmd", required=True
    )
    ver = consent.add_parser("verify", help="verify the decision log, or one record")
    ver.add_argument("--record", help="decision or consent id: check its inclusion proof")
    ver.add_argument(
        "--log-keys",
        help="the log's public keys, a vkeys file (default: "
        "EMA_LOG_KEYS_FILE, else <data-dir>/keys/consent-log.vkeys)",
    )
    ver.add_argument(
        "--witnesses",
        help="the witnesses you trust, a vkeys file of cosigner "
        "keys (default: every unit of kind witness in the directory)",
    )
    ver.add_argument("--no-witnesses", action="store_true", help="check the database only")
    lk = consent.add_parser(
        "log-key",
        help="make the decision log's next signing key; "
        "prints its vkey for the witnesses (docs/runbook.md)",
    )
    lk.add_argument("--out", required=True, help="where to write the private key (mode 600)")
    lk.add_argument(
        "--origin", default="emaflyt.local/consent-log", help="the log's origin, as EMA_LOG_ORIGIN"
    )
    lk.add_argument(
        "--keys-file",
        help="the log's key list to add the public key to "
        "(default <data-dir>/keys/consent-log.vkeys)",
    )
    lk.set_defaults(func=cmd_consent_log_key)
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_consent_verify)
    gr = consent.add_parser("grant", help="sign and send a consent as a unit; wait for the ack")
    gr.add_argument("--file", required=True, help="no.ema.consent.granted.v1 data (JSON)")
    wd = consent.add_parser("withdraw", help="sign and send a withdrawal; wait for the ack")
    wd.add_argument("--case", required=True, help="case id")
    wd.add_argument("--consent", required=True, help="consent id")
    wd.add_argument(
        "--by",
        required=True,
        choices=["representative", "guardian", "young_person"],
        help="who withdrew it",
    )
    wd.add_argument("--at", help="when (ISO 8601 with offset; default now)")
    for cmd in (gr, wd):
        cmd.add_argument("--unit", required=True, help="the registering unit's id")
        cmd.add_argument("--key", required=True, help="the unit's Ed25519 private key (PEM)")
        cmd.add_argument(
            "--jwt",
            help="the unit's NATS user JWT (default: the one the operator "
            "issued, under data/nats/users/)",
        )
        cmd.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the ack")
        cmd.set_defaults(func=lambda a: asyncio.run(_consent_send(a)))
    ex = consent.add_parser("export", help="a case's consents as FHIR R4 Consents, JSON or CSV")
    ex.add_argument("case_id")
    ex.add_argument("--format", choices=["fhir", "json", "csv"], default="fhir")
    ex.add_argument("--out", help="write to this file instead of standard output")
    ex.set_defaults(func=cmd_consent_export)

    from services.consent.audit.cli import add_parser as add_audit_parser

    add_audit_parser(sub)

    db = sub.add_parser("db", help="database migrations of every service (Alembic)")
    db_sub = db.add_subparsers(dest="db_cmd", required=True)
    for name, text in (
        ("upgrade", "bring each database to the newest revision"),
        ("current", "show where each database stands"),
    ):
        cmd = db_sub.add_parser(name, help=text)
        cmd.add_argument(
            "--service",
            action="append",
            choices=SERVICES,
            help="only this service (repeatable; default: all five)",
        )
        cmd.add_argument(
            "--url",
            help="database URL or template with {service} (default: "
            "EMA_DATABASE_URL, else the SQLite files in --data-dir)",
        )
        if name == "upgrade":
            cmd.add_argument("--revision", default="head")
        cmd.set_defaults(func=cmd_db)
    rev = db_sub.add_parser("revision", help="write the next revision from the models' changes")
    rev.add_argument("--service", required=True, choices=SERVICES)
    rev.add_argument("-m", "--message", required=True)
    rev.set_defaults(func=cmd_db)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
