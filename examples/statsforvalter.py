"""The Statsforvalter's system: read intake's requests for a representative (the one broadcast
Statsforvalter units read) and appoint one for each, or for the case you name.

    python examples/statsforvalter.py --unit statsforvalter-oslo --key sf.pem \\
        --jwt data/nats/users/statsforvalter-oslo/<kid>.jwt --representative rep-demo \\
        [--case CASE_ID]

emaflyt sends no answer to an appointment: the case gets its representative, and consents
and decisions go to that unit from then on. Only nats-py and cryptography.
"""

from __future__ import annotations

from partner import Partner, arguments, run, today

REQUESTED = "no.ema.intake.representative-requested.v1"


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--representative", required=True, help="the representative's unit id")
    p.add_argument("--name", default="Rita Representant", help="the representative's name")
    p.add_argument("--case", help="appoint for this case only (default: every request read)")
    args = p.parse_args()
    async with Partner(args) as unit:

        def requests() -> list[dict]:
            return [
                r["event"]["data"]
                for r in unit.received
                if r["event"]["type"] == REQUESTED
                and (args.case is None or r["event"]["data"]["case_id"] == args.case)
            ]

        # Requests stay in the consumer until acknowledged: read what waits, then stop.
        await unit.read("INTAKE", lambda: bool(requests()), wait=args.wait)
        cases = {r["case_id"]: r for r in requests()}
        if args.case and args.case not in cases:
            print(f"no request for {args.case} waits (read before?); appointing all the same")
            cases[args.case] = {"case_id": args.case, "case_ref": "?", "care_centre": "?"}
        for case_id, req in cases.items():
            print(f"request: case {req['case_ref']} ({case_id}) at {req['care_centre']}")
            await unit.send(
                "no.ema.intake.representative-appointed.v1",
                "ema.intake.representative.appointed",
                {
                    "case_id": case_id,
                    "representative_unit": args.representative,
                    "name": args.name,
                    "appointed_on": str(today()),
                },
                case_id=case_id,
            )
        missing = [] if cases else ["a request for a representative"]
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
