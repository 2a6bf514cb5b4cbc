"""How the operator's commands find the running system and connect to it as the operator:
the NATS URL and the trust folder from the data folder's run.json (written by `emaflyt up`),
from --nats-url / EMA_NATS_URL, or the default on loopback."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from deploy.provision import trust_dir
from deploy.trust import OPERATOR_USER, Trust


def run_info(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def nats_url(args: argparse.Namespace) -> str:
    if getattr(args, "nats_url", None):
        return str(args.nats_url)
    return str(
        run_info(Path(args.data_dir)).get("nats_url")
        or os.environ.get("EMA_NATS_URL", "nats://127.0.0.1:4222")
    )


def servers(args: argparse.Namespace) -> list[str]:
    return [u.strip() for u in nats_url(args).split(",") if u.strip()]


def trust(args: argparse.Namespace) -> Trust | None:
    """The operator's trust folder (data/nats/trust), if this system runs with identities."""
    folder = Path(run_info(Path(args.data_dir)).get("trust_dir") or trust_dir(Path(args.data_dir)))
    return Trust.load_or_create(folder) if Trust.exists(folder) else None


async def connect(args: argparse.Namespace, identity: str = OPERATOR_USER, **kw: Any) -> Any:
    """A NATS connection as the operator; raises with a hint when the system is not up."""
    import nats

    found = trust(args)
    options = found.connect_options(identity) if found else {}
    try:
        return await nats.connect(
            servers=servers(args),
            connect_timeout=2,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            **options,
            **kw,
        )
    except Exception as exc:
        raise SystemExit(
            f"cannot reach NATS at {nats_url(args)} as the operator ({exc}). Is the system up "
            "(`make up`), and is --data-dir the system's data folder?"
        ) from None
