"""A municipality's system: publish this year's settlement capacity, read the settlement
offers Bufetat sends, open the child's data that comes with an offer when a consent releases
it, accept (or decline) the offer, and claim the refund of child-welfare expenses.

    python examples/municipality.py --unit kommune-0301 --key k0301.pem \\
        --jwt data/nats/users/kommune-0301/<kid>.jwt --sealing-key k0301-sealing.json \\
        [--accept] [--refund-nok 45000]

An offer carries ids, the measure and the answer deadline only; the child's data (age,
languages, care needs, family ties, recommended measure) follows as a delivery whose
request_id is the offer's share_request_id, and only when a consent covers it
(contracts/README.md §12). Without it this example does not answer blind: it says so and
leaves the offer to a person. Only nats-py and cryptography (examples/partner.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from partner import Partner, arguments, run, today

OFFER = "no.ema.municipality.offer.v1"
OUTCOME = "no.ema.municipality.offer-outcome.v1"


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--children", type=int, default=5, help="children the council decided on")
    p.add_argument("--free", type=int, default=2, help="free places now")
    p.add_argument("--measure", action="append", help="measures offered (default bofellesskap)")
    p.add_argument("--accept", action="store_true", help="accept offers that bring the data")
    p.add_argument(
        "--data-wait",
        type=float,
        default=5.0,
        help="seconds to wait for an offer's data after the offer",
    )
    p.add_argument("--refund-nok", help="claim this refund for a child settled now")
    args = p.parse_args()
    kommunenummer = args.unit.removeprefix("kommune-")
    missing: list[str] = []
    async with Partner(args) as unit:
        await unit.send(
            "no.ema.municipality.capacity.v2",
            "ema.municipality.capacity.v2",
            {
                "kommunenummer": kommunenummer,
                "year": datetime.now(UTC).year,
                "children": args.children,
                "offers": [
                    {"measure": m, "min_age": 6, "max_age": 17}
                    for m in args.measure or ["bofellesskap"]
                ],
                "competences": ["language_support"],
                "free_places": args.free,
            },
        )

        def offers() -> list[dict]:
            return [r["event"]["data"] for r in unit.received if r["event"]["type"] == OFFER]

        await unit.read("MUNICIPALITY", lambda: bool(offers()))
        if offers():  # others may come right after the first: read on a little
            await unit.read("MUNICIPALITY", lambda: False, wait=args.data_wait)
        answered: list[tuple[dict, dict]] = []
        for offer in offers():
            print(
                f"offer {offer['offer_id']}: case {offer['case_ref']}, {offer['measure']}, "
                f"answer by {offer['answer_by']}"
            )
            request_id = offer["share_request_id"]
            await unit.read(
                "SHARE", lambda rid=request_id: unit.delivery(rid) is not None, wait=args.data_wait
            )
            entry = unit.delivery(request_id)
            if entry is None or "opened" not in entry:
                print(
                    "  no data came with it: no consent releases the child's settlement data "
                    "to us. Not answered blind: ask Bufetat."
                )
                continue
            child = entry["opened"]["data"]
            print(f"  the child: {child}")
            if args.accept:
                answer = {
                    "offer_id": offer["offer_id"],
                    "answer": "accept",
                    "settle_on": str(today()),
                    "measure": offer["measure"],
                }
            else:
                answer = {
                    "offer_id": offer["offer_id"],
                    "answer": "decline",
                    "reason": "Ingen ledig plass med riktig kompetanse",
                }
            sent = await unit.send(
                "no.ema.municipality.offer-answered.v1",
                "ema.municipality.offer.answered",
                answer,
                case_id=offer["case_id"],
            )
            answered.append((offer, sent))
        for offer, sent in answered:
            await unit.read("MUNICIPALITY", unit.answered(sent, OUTCOME))
            outcome = unit.answers(sent, OUTCOME)
            if not outcome:
                missing.append(f"the outcome of offer {offer['offer_id']}")
                continue
            d = outcome[0]["data"]
            print(f"offer {offer['offer_id']}: {d['outcome']} ({d['message_en']})")
            if d["outcome"] == "settled" and args.refund_nok:
                claim = await unit.send(
                    "no.ema.municipality.refund-claimed.v1",
                    "ema.municipality.refund.claimed",
                    {
                        "claim_id": f"claim-{offer['offer_id']}",
                        "case_id": offer["case_id"],
                        "kommunenummer": kommunenummer,
                        "period_from": str(today()),
                        "period_to": str(today()),
                        "expenses_nok": args.refund_nok,
                    },
                    case_id=offer["case_id"],
                )
                decided = "no.ema.municipality.refund-decided.v1"
                await unit.read("MUNICIPALITY", unit.answered(claim, decided))
                for r in unit.answers(claim, decided):
                    print(
                        f"refund {r['data']['outcome']}: {r['data']['refund_nok']} NOK "
                        f"({r['data']['reason']})"
                    )
                if not unit.answers(claim, decided):
                    missing.append("the refund decision")
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
