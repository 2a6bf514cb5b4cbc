"""A school's system: open what the consent broker released to the school (say, a care
centre's school information for a new pupil), and report a concern to the child welfare
service under the duty to inform (barnevernloven § 13-2: no consent needed, the statute
claimed), which the broker releases with only the fields a concern report may carry.

    python examples/school.py --unit school-demo --key school.pem \\
        --jwt data/nats/users/school-demo/<kid>.jwt --sealing-key school-sealing.json \\
        --case CASE_ID [--barnevern barnevern-demo]

Only nats-py and cryptography (examples/partner.py). Exits 1 when an answer did not come.
"""

from __future__ import annotations

from partner import Partner, arguments, run


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--case", required=True, help="the child's case id")
    p.add_argument("--barnevern", help="the child welfare service to report a concern to")
    p.add_argument("--age", type=int, default=12)
    args = p.parse_args()
    missing: list[str] = []
    async with Partner(args) as unit:

        def deliveries() -> list[dict]:
            return [
                r
                for r in unit.received
                if r["event"]["type"] == "no.ema.share.delivered.v2"
                and r["event"]["data"]["case_id"] == args.case
            ]

        # What was released to us waits in our SHARE consumer, sealed to our sealing key.
        await unit.read("SHARE", lambda: bool(deliveries()))
        for entry in deliveries():
            d = entry["event"]["data"]
            print(
                f"delivery from {d['source_unit']} ({d['data_category']}, {d['purpose']}, "
                f"{d['legal_basis']}): fields {', '.join(d['fields'])}"
            )
            if "opened" in entry:
                shown = ", ".join(sorted(entry["opened"]["data"]))
                ok = "hash matches" if entry["hash_ok"] else "HASH DOES NOT MATCH"
                print(f"  opened: {shown} ({ok})")
            elif unit.sealing is None:
                print("  give --sealing-key to open it")
            else:
                print(f"  cannot open it: {entry.get('open_error')}")

        if args.barnevern:
            fields = ["concern", "observations", "age", "care_centre"]
            report = await unit.share_request(
                args.case,
                args.barnevern,
                "school",
                "concern_report",
                {
                    "concern": "Eleven virker redd og sliten, sier lite",
                    "observations": "Har ikke spist lunsj på en uke",
                    "age": args.age,
                    "care_centre": "ukjent",
                    "school_history": "not a concern report field: the broker drops it",
                },
                claimed_basis="bvl-13-2",
                expect={"outcome": "released", "fields": fields},
            )
            await unit.read("SHARE", unit.answered(report, "no.ema.share.receipt.v1"))
            receipts = unit.answers(report, "no.ema.share.receipt.v1")
            if receipts:
                r = receipts[0]["data"]
                print(f"concern report to {args.barnevern}: {r['outcome']} ({r['message_en']})")
            else:
                missing.append("the concern report's receipt")
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
