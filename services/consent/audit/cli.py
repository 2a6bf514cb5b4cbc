"""`emaflyt audit`: accounts, search, show, verify, export and what-if on the consent broker's
database (the SQLite file in the data folder), with progress on stderr for long runs."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import io
import json
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.consent.audit import queries

FIELDS = [
    "decision_id",
    "decided_at",
    "case_id",
    "source_unit",
    "recipient_unit",
    "data_category",
    "purpose",
    "outcome",
    "legal_basis",
    "fields",
    "obligations",
    "reasons",
    "policy_revision",
    "data_version",
    "log_index",
    "record_hash",
]


def _paths(args: argparse.Namespace) -> tuple[Path | str, Path]:
    """The broker's database (SQLite file, or the PostgreSQL URL) and the decision log's
    public keys (vkeys: --log-keys, EMA_LOG_KEYS_FILE, or the data folder's)."""
    from services.consent.verification import database_of, keys_file_of

    data = Path(args.data_dir)
    return database_of(data), keys_file_of(data, getattr(args, "log_keys", None))


def _verifiers(args: argparse.Namespace) -> list[Any]:
    from services.consent.verification import load_verifiers

    return load_verifiers(_paths(args)[1])


def _run(
    args: argparse.Namespace,
    work: Callable[[Any], Awaitable[int]],
    create: bool = False,
    need_key: bool = False,
) -> int:
    """Open the broker's database (creating the tables for `user add`) and run `work`."""
    from services.kit import migrations
    from services.kit.db import make_engine, sessionmaker

    db, key = _paths(args)
    for path in [db] * (not create) + [key] * need_key:
        if isinstance(path, Path) and not path.exists():
            print(f"{path} not found: give --data-dir of the system", file=sys.stderr)
            return 2

    async def main() -> int:
        engine = make_engine(f"sqlite+aiosqlite:///{db}" if isinstance(db, Path) else db)
        try:
            if create:  # the broker's schema, as the service itself would migrate it
                await migrations.upgrade(engine, "consent")
            return await work(sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


class Progress:
    """`done/total` on one stderr line, only when stderr is a terminal or asked for."""

    def __init__(self, what: str, show: bool) -> None:
        self.what, self.show = what, show

    def __call__(self, done: int, total: int) -> None:
        if self.show and (done == total or done % 50 == 0 or done == 1):
            end = "\n" if done == total else ""
            print(f"\r{self.what}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def _parse_filters(args: argparse.Namespace) -> queries.Filters | None:
    try:
        return queries.Filters.parse(args)
    except ValueError:
        print("--since/--until: write dates as YYYY-MM-DD", file=sys.stderr)
        return None


# -- commands --------------------------------------------------------------------------------


def cmd_user_add(args: argparse.Namespace) -> int:
    from services.consent.audit.accounts import hash_password
    from services.consent.audit.store import AuditUser

    if args.oidc:
        password = None
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if password != getpass.getpass("again: "):
            print("the passwords differ; nothing changed", file=sys.stderr)
            return 2
    if args.subject and not args.issuer:
        print("--subject needs --issuer: a subject is unique only at its provider", file=sys.stderr)
        return 2
    if password is not None and len(password) < 12:
        print("password: at least 12 characters, please", file=sys.stderr)
        return 2

    async def work(sessions: Any) -> int:
        async with sessions() as session, session.begin():
            user = await session.get(AuditUser, args.username)
            if user is None:
                user = AuditUser(username=args.username)
                session.add(user)
            user.role, user.disabled = args.role, False
            user.origin = "oidc" if password is None else "local"
            user.password_hash = None if password is None else hash_password(password)
            if args.oidc:  # bound now if the subject is known, else at the first sign-in
                user.oidc_issuer = args.issuer if args.subject else None
                user.oidc_subject = args.subject or None
        print(f"user {args.username} ({args.role}, {user.origin}) saved")
        return 0

    return _run(args, work, create=True)


def cmd_search(args: argparse.Namespace) -> int:
    f = _parse_filters(args)
    if f is None:
        return 2

    async def work(sessions: Any) -> int:
        async with sessions() as session:
            rows, cursor = await queries.search(session, f, args.after, args.limit)
        out = [queries.decision_dict(r) for r in rows]
        if args.json:
            print(json.dumps({"decisions": out, "next": cursor}, ensure_ascii=False, indent=2))
            return 0
        for d in out:
            print(
                f"{d['decided_at'][:19]}  {d['decision_id']}  {d['outcome']:8s} "
                f"{d['data_category']:10s} {d['purpose']:22s} {d['source_unit']} -> "
                f"{d['recipient_unit']}  {d['legal_basis'] or '-'}"
            )
        if cursor:
            print(f"next page: --after {cursor}")
        return 0

    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from services.consent.store import DecisionRecord

    verifiers = _verifiers(args) if _paths(args)[1].exists() else None

    async def work(sessions: Any) -> int:
        async with sessions() as session:
            row = await session.scalar(select(DecisionRecord).where(DecisionRecord.id == args.id))
        if row is None:
            print(f"no decision {args.id}", file=sys.stderr)
            return 1
        d = queries.decision_dict(row)
        check = queries.check_decision(_paths(args)[0], verifiers, row) if verifiers else None
        if args.json:
            print(
                json.dumps(
                    {**d, "policy_input": row.policy_input, "check": check},
                    ensure_ascii=False,
                    indent=2,
                )
            )
        else:
            for name in FIELDS:
                print(f"{name:16s} {d[name]}")
            print(
                f"{'consents':16s} relied on {queries.consents_relied_on(row) or '-'}, "
                f"in force {queries.consents_in_force(row) or '-'}"
            )
            if check is not None:
                print("proof            " + ("valid" if check["ok"] else "INVALID"))
                for p in check["problems"]:
                    print(f"PROBLEM: {p}")
        return 0 if check is None or check["ok"] else 1

    return _run(args, work, need_key=True)


def cmd_verify(args: argparse.Namespace) -> int:
    from services.consent.verification import verify_log
    from services.consent.witnesses import print_witnesses

    db, _ = _paths(args)
    verifiers = _verifiers(args) if _paths(args)[1].exists() else []
    skipped: list[str | None] = ["--no-witnesses" if args.no_witnesses else None]

    async def ask(report: Any) -> None:
        from deploy.cli import witnesses_of

        skipped[0] = await asyncio.to_thread(witnesses_of, args, report, verifiers)

    async def work(sessions: Any) -> int:
        progress = Progress("verifying", not args.quiet)
        if args.no_record:
            report = await asyncio.to_thread(verify_log, db, verifiers, progress)
            await ask(report)
        else:
            report = await queries.verify_and_record(
                sessions, db, verifiers, f"cli:{getpass.getuser()}", progress, witnesses=ask
            )
        if args.json:
            print(json.dumps({**report.as_json(), "witnesses_skipped": skipped[0]}))
        else:
            print(f"log: {report.size} records, signed tree head at size {report.signed_size}")
            for problem in report.problems:
                print(f"PROBLEM: {problem}")
            print_witnesses(report, skipped[0])
            print("ok: every record matches the signed tree heads" if report.ok else "FAILED")
        return 0 if report.ok else 1

    return _run(args, work, need_key=True)


def cmd_export(args: argparse.Namespace) -> int:
    f = _parse_filters(args)
    if f is None:
        return 2

    async def work(sessions: Any) -> int:
        rows: list[dict[str, Any]] = []
        cursor = None
        async with sessions() as session:
            while True:
                page, cursor = await queries.search(session, f, cursor, 500)
                rows += [queries.decision_dict(r) for r in page]
                if cursor is None:
                    break
        rows.reverse()  # oldest first
        if args.format == "json":
            text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore")
            writer.writeheader()
            for d in rows:
                writer.writerow(
                    {
                        k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                        for k, v in d.items()
                    }
                )
            text = buf.getvalue()
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"{len(rows)} decisions written to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return _run(args, work)


def cmd_what_if(args: argparse.Namespace) -> int:
    try:
        f = queries.Filters.parse(args)
        rego = Path(args.rego).read_text(encoding="utf-8") if args.rego else None
        directory = Path(args.policy_dir) if args.policy_dir else None
        path = queries.candidate_directory(args.module, rego, directory)
    except (ValueError, OSError) as exc:
        print(f"what-if: {exc}", file=sys.stderr)
        return 2

    async def work(sessions: Any) -> int:
        async with sessions() as session:
            rows = await queries.decisions_between(session, f.since, f.until)
        result = queries.what_if(path, rows, Progress("evaluating", not args.quiet))
        if result.error:
            print(f"the candidate policy could not be loaded: {result.error}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
        else:
            print(
                f"candidate {result.revision}: {result.checked} decisions checked, "
                f"{len(result.changes)} would change, {result.no_input} without stored input"
            )
            for c in result.changes:
                print(
                    f"  {c.decided_at[:19]}  {c.decision_id}  {c.data_category}/{c.purpose}: "
                    f"{c.outcome} {c.fields} -> {c.candidate_outcome} {c.candidate_fields}"
                )
        return 0

    try:
        return _run(args, work)
    finally:
        if path != directory:
            shutil.rmtree(path, ignore_errors=True)


# -- parser ----------------------------------------------------------------------------------


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case-id", dest="case_id")
    p.add_argument("--unit", help="source or recipient unit")
    p.add_argument("--data-category", dest="data_category", choices=queries.CATEGORIES)
    p.add_argument("--outcome", choices=queries.OUTCOMES)
    p.add_argument("--legal-basis", dest="legal_basis", help="prefix, e.g. consent: or statute:")
    p.add_argument("--since", help="YYYY-MM-DD (UTC, inclusive)")
    p.add_argument("--until", help="YYYY-MM-DD (UTC, inclusive)")


def add_parser(sub: Any) -> None:
    """`emaflyt audit ...` under the main parser's subcommands."""
    from services.consent.audit.store import ROLES

    audit = sub.add_parser("audit", help="the privacy officer's audit of the consent broker")
    cmds = audit.add_subparsers(dest="audit_cmd", required=True)

    user = cmds.add_parser("user", help="audit page accounts").add_subparsers(
        dest="user_cmd", required=True
    )
    add = user.add_parser("add", help="add a user or set its role and password")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--oidc",
        action="store_true",
        help="signs in with OpenID Connect only; bound to the ID token's issuer and subject "
        "(--subject, or the first sign-in whose username claim names the account)",
    )
    add.add_argument("--subject", help="the provider's subject (sub) for this person")
    add.add_argument("--issuer", help="the provider (EMA_OIDC_ISSUER) the subject belongs to")
    add.set_defaults(func=cmd_user_add)

    se = cmds.add_parser("search", help="decisions, newest first, one page at a time")
    _filters(se)
    se.add_argument("--after", help="cursor printed at the end of the previous page")
    se.add_argument("--limit", type=int, default=queries.PAGE_SIZE)
    se.add_argument("--json", action="store_true")
    se.set_defaults(func=cmd_search)

    sh = cmds.add_parser("show", help="one decision, with its log record checked")
    sh.add_argument("id", help="decision id")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--log-keys", help="the log's public keys (vkeys file)")
    sh.set_defaults(func=cmd_show)

    ve = cmds.add_parser("verify", help="verify the whole log; the result shows on the page")
    ve.add_argument("--json", action="store_true")
    ve.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ve.add_argument("--no-record", action="store_true", help="do not store the result")
    ve.add_argument("--log-keys", help="the log's public keys (vkeys file)")
    ve.add_argument("--witnesses", help="pinned witnesses (cosigner vkeys file)")
    ve.add_argument("--no-witnesses", action="store_true", help="check the database only")
    ve.set_defaults(func=cmd_verify)

    ex = cmds.add_parser("export", help="decisions as CSV or JSON (FHIR: emaflyt consent export)")
    _filters(ex)
    ex.add_argument("--format", choices=["csv", "json"], default="csv")
    ex.add_argument("--out", help="file to write (default: stdout)")
    ex.set_defaults(func=cmd_export)

    wi = cmds.add_parser("what-if", help="decisions a candidate policy would change")
    wi.add_argument("--policy-dir", help="a complete policy directory")
    wi.add_argument("--rego", help="a Rego file replacing one module of the current policy")
    wi.add_argument("--module", default="share.rego", help="module the --rego file replaces")
    wi.add_argument("--since", help="YYYY-MM-DD")
    wi.add_argument("--until", help="YYYY-MM-DD")
    wi.add_argument("--json", action="store_true")
    wi.add_argument("--quiet", action="store_true", help="no progress on stderr")
    wi.set_defaults(func=cmd_what_if)
