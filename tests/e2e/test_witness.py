"""Witnesses outside the database over the real bus: the reference witness
(`python -m services.witness`, its own store and key, connected as the `unit-witness` NATS
user) checks and cosigns every checkpoint of the decision log, asks the broker for a proof
over a gap, and `emaflyt consent verify` reports which witnesses agree."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from contracts.messages import UnitKind
from deploy import units
from deploy.launcher import System
from services.kit.signing import UnitKey
from tests.e2e.test_consent import KOPP, ROOT, cli, open_case, receipt, share, uid
from tests.support import wait_for


@dataclass
class WitnessProcess:
    unit_id: str
    data_dir: Path
    nats_url: str
    proc: subprocess.Popen | None = None

    def launch(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EMA_UNIT_ID": self.unit_id,
            "EMA_DATA_DIR": str(self.data_dir),
            "EMA_NATS_URL": self.nats_url,
        }
        with open(self.data_dir / "witness.log", "ab") as log:  # the process keeps its copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.witness"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def start_witness(system: System, base: Path, name: str | None = None) -> WitnessProcess:
    """A witness of its own: its key registered by the operator as kind witness, the log's
    public keys copied to it, running as the unit-witness NATS user."""
    unit_id = name or uid("witness")
    data_dir = base / unit_id
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    key = UnitKey.generate(unit_id)
    key.save(data_dir / "keys" / f"{unit_id}.pem")
    nc = await system.connect()
    done = await units.register(
        nc, system.data_dir, system.trust(), unit_id, unit_id, UnitKind.WITNESS, key.public_b64
    )
    await nc.close()
    if done.jwt_path is not None:  # its NATS user, beside its key (as the operator hands it)
        (data_dir / "keys" / f"{unit_id}.jwt").write_text(done.jwt_path.read_text())
    trusted = data_dir / "keys" / "witnessed-logs.vkeys"
    trusted.write_text((system.data_dir / "keys" / "consent-log.vkeys").read_text())
    witness = WitnessProcess(unit_id, data_dir, system.nats_url)
    witness.launch()
    try:
        await wait_for(lambda: ask(system, witness) is not None, timeout=20)
    except BaseException:
        witness.stop()
        raise
    return witness


def ask(system: System, witness: WitnessProcess, size: int | None = None) -> dict | None:
    """The witness's answer on the bus (None while it does not answer)."""

    async def request() -> dict | None:
        nc = await system.connect()
        try:
            origin = "emaflyt.local/consent-log"
            reply = await nc.request(
                f"ema.rpc.witness.{witness.unit_id}",
                json.dumps({"origin": origin, "size": size}).encode(),
                timeout=2,
            )
            return json.loads(reply.data)
        except Exception:  # noqa: BLE001 (not up yet)
            return None
        finally:
            await nc.close()

    if witness.proc is None or witness.proc.poll() is not None:
        raise RuntimeError(f"the witness exited; see {witness.data_dir / 'witness.log'}")
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, request()).result()


def log_size(system: System) -> int:
    from tests.support import query

    return query(system.database_url("consent"), "select count(*) from consent_log")[0][0]


async def cosigned_all(system: System, witness: WitnessProcess, timeout: float = 30) -> dict:
    async def caught_up() -> dict | None:
        answer = await asyncio.to_thread(ask, system, witness)
        return answer if answer and answer.get("size") == log_size(system) else None

    return await wait_for(caught_up, timeout=timeout, interval=0.3)


async def decisions(system: System, n: int) -> list[str]:
    centre, case_id = await open_case(system)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    ids = []
    for _ in range(n):
        request = await share(centre, case_id, "kommune-0301", "kopp", "settlement", KOPP)
        ids.append((await receipt(centre, receipts, request.request_id))["decision_id"])
    await centre.nc.close()
    return ids


async def test_a_witness_cosigns_every_checkpoint_and_verify_reports_it_agrees(
    fresh_system: System, tmp_path: Path
) -> None:
    system = fresh_system
    await decisions(system, 2)
    witness = await start_witness(system, tmp_path)
    try:
        answer = await cosigned_all(system, witness)
        assert answer["alarms"] == []
        assert f"— {witness.unit_id} " in answer["checkpoint"]  # the C2SP cosignature line
        out = cli(system, "consent", "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"witness {witness.unit_id}: agrees" in out.stdout
        report = json.loads(cli(system, "consent", "verify", "--json").stdout)
        [view] = report["witnesses"]
        assert view["status"] == "agrees" and view["size"] == log_size(system)
    finally:
        witness.stop()
    # Stopped, it misses checkpoints; started again, it asks the broker for a proof over the
    # gap (old size != the size it holds) and cosigns the newest.
    await decisions(system, 3)
    witness.launch()
    try:
        answer = await cosigned_all(system, witness)
        assert answer["alarms"] == []
    finally:
        witness.stop()


async def test_a_delivery_carries_a_checkpoint_and_inclusion_proof_the_recipient_can_check(
    fresh_system: System, tmp_path: Path
) -> None:
    import base64

    from contracts.messages import ShareDeliveredV2
    from services.kit import merkle, tlog

    system = fresh_system
    witness = await start_witness(system, tmp_path)
    try:
        centre, case_id = await open_case(system)
        from tests.support import Partner

        barnevern = await Partner.register(
            system, uid("barnevern"), UnitKind.BARNEVERN, sealing=True
        )
        inbox = await barnevern.nc.subscribe(f"ema.share.delivered.v2.{barnevern.key.unit_id}")
        await share(
            centre,
            case_id,
            barnevern.key.unit_id,
            "barnevern",
            "anonymous_consultation",
            {"age_band": "10-12", "question": "hva gjør vi?"},
        )
        delivered = ShareDeliveredV2(**json.loads((await inbox.next_msg(timeout=15)).data)["data"])
        # What the recipient checks with the log's public key alone: the checkpoint is the
        # log's, and the decision record (its leaf hash) is in the tree it names.
        log_keys = tlog.read_vkeys((system.data_dir / "keys" / "consent-log.vkeys").read_text())
        checkpoint, _ = tlog.open_checkpoint(delivered.checkpoint, log_keys)
        assert checkpoint.size == delivered.log_index + 1
        leaf = bytes.fromhex(delivered.record_hash.removeprefix("sha256:"))
        proof = [base64.b64decode(h) for h in delivered.inclusion_proof]
        assert merkle.verify_inclusion(
            delivered.log_index, checkpoint.size, leaf, proof, checkpoint.root
        )
        # And a witness cosigned that very checkpoint.
        await cosigned_all(system, witness)
        answer = await asyncio.to_thread(ask, system, witness, checkpoint.size)
        cosigners = [
            tlog.Verifier(
                witness.unit_id,
                tlog.COSIGNATURE_V1,
                base64.b64decode(
                    UnitKey.load(
                        witness.unit_id, witness.data_dir / "keys" / f"{witness.unit_id}.pem"
                    ).public_b64
                ),
            )
        ]
        assert witness.unit_id in tlog.verify_cosignatures(answer["checkpoint"], cosigners)
        assert tlog.open_checkpoint(answer["checkpoint"], log_keys)[0] == checkpoint
        await centre.nc.close()
        await barnevern.nc.close()
    finally:
        witness.stop()
