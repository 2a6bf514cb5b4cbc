"""What a witness decides about a checkpoint, from the last one it cosigned: pure rules.

A witness cosigns a checkpoint only if it follows from the largest one it cosigned before
(an RFC 9162 consistency proof). A checkpoint for a size it already cosigned must carry the
same root; anything else is an alarm: the log's history changed (rewritten, reordered, or
truncated and grown again). The first checkpoint of a log is taken on first use.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from services.kit import merkle
from services.kit.tlog import Checkpoint


@dataclass(frozen=True)
class Held:
    size: int
    root: bytes


@dataclass(frozen=True)
class Verdict:
    action: Literal["cosign", "alarm", "seen", "need_proof"]
    problem: str = ""


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode()


def judge(
    held: Held | None,
    root_at: Callable[[int], bytes | None],
    checkpoint: Checkpoint,
    old_size: int,
    proof: list[bytes],
) -> Verdict:
    """`held`: the largest checkpoint cosigned; `root_at(size)`: the root cosigned at a size,
    if kept; `proof`: the consistency proof from `old_size` to the checkpoint's size."""
    if held is None:
        return Verdict("cosign")
    if checkpoint.size <= held.size:
        known = root_at(checkpoint.size)
        if known is None or known == checkpoint.root:
            return Verdict("seen")
        return Verdict(
            "alarm",
            (
                f"at tree size {checkpoint.size} the log now signs root {_b64(checkpoint.root)}, "
                f"but this witness cosigned root {_b64(known)} for that size: the log's records "
                f"up to index {checkpoint.size - 1} were rewritten, reordered or truncated"
            ),
        )
    if old_size != held.size:
        return Verdict("need_proof")
    if merkle.verify_consistency(held.size, checkpoint.size, held.root, checkpoint.root, proof):
        return Verdict("cosign")
    return Verdict(
        "alarm",
        (
            f"the checkpoint at tree size {checkpoint.size} is not consistent with the one this "
            f"witness cosigned at size {held.size}: records before index {held.size} changed"
        ),
    )
