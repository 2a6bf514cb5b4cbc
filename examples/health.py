"""A health service's system: share health information with another health service treating
the child (helsepersonelloven §§ 25 and 45: no consent needed, the statute claimed), and in an
emergency release what the emergency service treating the child must know now
(break-the-glass: only from a unit linked to the case, only to a unit that can act in an
emergency, released at once, reviewed afterwards, the representative told). Also opens what
is released to it.

    python examples/health.py --unit health-demo --key health.pem \\
        --jwt data/nats/users/health-demo/<kid>.jwt --sealing-key health-sealing.json \\
        --case CASE_ID [--to health-other] [--emergency-to legevakt-demo]

Only the fields each purpose may receive are released (contracts/README.md §10). Only
nats-py and cryptography (examples/partner.py). Exits 1 when an answer did not come.
"""

from __future__ import annotations

from partner import Partner, arguments, run

RECEIPT = "no.ema.share.receipt.v1"


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--case", required=True, help="the child's case id")
    p.add_argument("--to", help="the health service treating the child (default: yourself)")
    p.add_argument("--emergency-to", help="the emergency service treating the child now")
    args = p.parse_args()
    missing: list[str] = []
    async with Partner(args) as unit:
        treatment = ["health_history", "medication", "allergies", "mental_health", "therapy_notes"]
        record = {
            "health_history": "Latent TB, behandlet",
            "medication": ["isoniazid"],
            "allergies": [],
            "mental_health": "Søvnvansker",
            "therapy_notes": "Samtaler hver uke",
            "family_history": "not a treatment field: the broker drops it",
        }
        to = args.to or unit.unit_id
        expect = {"outcome": "released", "fields": treatment}
        sent = [
            await unit.share_request(
                args.case, to, "health", "treatment", record, claimed_basis="hpl-25", expect=expect
            )
        ]
        if args.emergency_to:
            now = {
                "allergies": ["penicillin"],
                "medication": ["isoniazid"],
                "emergency_contacts": ["legevakt 116 117"],
                "health_history": "Latent TB",
            }
            why = "Barnet har falt om på senteret; legevakten må vite om allergier og medisiner nå"
            emergency = await unit.share_request(
                args.case,
                args.emergency_to,
                "health",
                "emergency",
                now,
                justification=why,
                expect={"outcome": "released"},
            )
            sent.append(emergency)
        await unit.read("SHARE", lambda: all(unit.answers(s, RECEIPT) for s in sent))
        for s in sent:
            receipts = unit.answers(s, RECEIPT)
            what = f"{s['data']['purpose']} to {s['data']['recipient_unit']}"
            if not receipts:
                missing.append(f"the receipt for {what}")
                continue
            print(f"{what}: {receipts[0]['data']['outcome']}")
        if not args.to:  # released to ourselves: open it
            await unit.read(
                "SHARE", lambda: unit.delivery(sent[0]["data"]["request_id"]) is not None
            )
            entry = unit.delivery(sent[0]["data"]["request_id"])
            if entry is None:
                missing.append("the delivery to yourself")
            elif "opened" in entry:
                print(f"  opened: {', '.join(sorted(entry['opened']['data']))}")
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
