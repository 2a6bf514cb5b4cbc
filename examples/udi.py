"""UDI's system: report the decision on a child's asylum application, by DUF number.

    python examples/udi.py --unit udi --key udi.pem --jwt data/nats/users/udi/<kid>.jwt \\
        --duf 202600001234 [--outcome granted|refused] [--decided-on 2026-04-20]

emaflyt sends UDI no answer: the case gets its residence status; a grant starts the new KOPP
(3 weeks) and the settlement clock (3 months), a refusal closes the centre stay. A decision
for a DUF number with no case, a second decision, or one dated in the future is refused
(the operator sees why in the dead letters). Only nats-py and cryptography.
"""

from __future__ import annotations

import uuid

from partner import Partner, arguments, run, today


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--duf", required=True, help="the child's DUF number")
    p.add_argument("--outcome", choices=["granted", "refused"], default="granted")
    p.add_argument("--decided-on", default=None, help="date of the decision (default today)")
    p.add_argument("--reference", default=None, help="UDI's reference (default: generated)")
    args = p.parse_args()
    async with Partner(args) as unit:
        await unit.send(
            "no.ema.intake.residence-decided.v1",
            "ema.intake.residence.decided",
            {
                "duf_number": args.duf,
                "outcome": args.outcome,
                "decided_on": args.decided_on or str(today()),
                "udi_reference": args.reference or f"UDI-{uuid.uuid4().hex[:10]}",
            },
        )
    return unit.finish([])


if __name__ == "__main__":
    run(main)
