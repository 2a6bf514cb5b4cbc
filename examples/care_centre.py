"""A care centre's system: report an arrival, hear which case it opened and the deadlines that
follow, report the arrival talk held and the KOPP proposal sent, then register the child's
representative's consent to share school information with the child's school, and share it.

    python examples/care_centre.py --unit centre-demo --key centre-demo.pem \\
        --jwt data/nats/users/centre-demo/<kid>.jwt [--school school-demo]

Only nats-py and cryptography (examples/partner.py). Exits 1 when an answer did not come.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta

from partner import Partner, arguments, run, today


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--duf", default="2026" + "".join(random.choices("0123456789", k=8)))
    p.add_argument("--birth-date", default=str(today().replace(year=today().year - 12)))
    p.add_argument("--school", help="the school's unit id, to share school information with")
    args = p.parse_args()
    missing: list[str] = []
    async with Partner(args) as unit:
        arrival = await unit.send(
            "no.ema.intake.arrival.v1",
            "ema.intake.arrival",
            {
                "duf_number": args.duf,
                "name": "Test Testesen",
                "birth_date": args.birth_date,
                "birth_date_estimated": True,
                "sex": "male",
                "nationality": "AFG",
                "languages": ["prs", "ps"],
                "care_centre": unit.unit_id,
                "arrived_at": datetime.now(UTC).isoformat(),
            },
        )
        await unit.read("INTAKE", unit.answered(arrival, "no.ema.intake.arrival-registered.v1"))
        registered = unit.answers(arrival, "no.ema.intake.arrival-registered.v1")
        if not registered:
            return unit.finish(["the case the arrival opened (arrival-registered)"])
        case = registered[0]["data"]
        case_id = case["case_id"]
        print(f"case {case['outcome']}: {case['case_ref']} ({case_id}), DUF {args.duf}")
        await unit.read("NOTIFY", unit.answered(arrival, "no.ema.notify.task-notice.v1"))
        for notice in unit.answers(arrival, "no.ema.notify.task-notice.v1"):
            task = notice["data"]
            print(f"  deadline {task['task']:20s} due {task['due']}  ({task['legal_ref']})")

        # The arrival talk was held today; the KOPP proposal went to Bufetat.
        talk = await unit.send(
            "no.ema.planning.task-completed.v1",
            "ema.planning.task.completed",
            {"case_id": case_id, "task": "arrival_talk", "completed_on": str(today())},
            case_id=case_id,
        )
        kopp = await unit.send(
            "no.ema.planning.kopp-submitted.v1",
            "ema.planning.kopp.submitted",
            {
                "case_id": case_id,
                "submitted_on": str(today()),
                "document_sha256": hashlib.sha256(b"KOPP").hexdigest(),
            },
            case_id=case_id,
        )
        notice = "no.ema.notify.task-notice.v1"
        await unit.read(
            "NOTIFY", lambda: bool(unit.answers(talk, notice) and unit.answers(kopp, notice))
        )
        for sent, what in ((talk, "arrival_talk done"), (kopp, "kopp_proposal done")):
            if not unit.answers(sent, notice):
                missing.append(f"the task notice {what}")

        if args.school:
            # The representative consented orally, heard with the child, to the school getting
            # what schooling needs (contracts/README.md §10: school_history, languages,
            # learning_needs). The centre witnessed it and registers it.
            now = datetime.now(UTC)
            consent = await unit.send(
                "no.ema.consent.granted.v1",
                "ema.consent.granted",
                {
                    "consent_id": f"school-{uuid.uuid4().hex[:12]}",
                    "version": 1,
                    "case_id": case_id,
                    "grantor": {
                        "role": "representative",
                        "capacity": "representant oppnevnt av Statsforvalteren",
                    },
                    "form": {
                        "kind": "oral",
                        "witness_unit": unit.unit_id,
                        "witness_role": "miljøterapeut",
                    },
                    "scope": [
                        {
                            "categories": ["school"],
                            "source_units": [unit.unit_id],
                            "recipient_units": [args.school],
                            "purposes": ["schooling"],
                        }
                    ],
                    "granted_at": now.isoformat(),
                    "valid_from": now.isoformat(),
                    "valid_to": (now + timedelta(days=365)).isoformat(),
                    "child_heard": {"status": "heard", "method": "samtale med tolk"},
                },
                case_id=case_id,
            )
            await unit.read("CONSENT", unit.answered(consent, "no.ema.consent.recorded.v1"))
            if not unit.answers(consent, "no.ema.consent.recorded.v1"):
                missing.append("the consent's acknowledgement (consent.recorded)")
            else:
                share = await unit.share_request(
                    case_id,
                    args.school,
                    "school",
                    "schooling",
                    {
                        "school_history": "Fire år skolegang i Afghanistan",
                        "languages": ["prs", "ps"],
                        "learning_needs": "Trenger norskopplæring",
                        "name": "Test Testesen",  # not a schooling field: the broker drops it
                    },
                    expect={
                        "outcome": "released",
                        "fields": ["school_history", "languages", "learning_needs"],
                    },
                )
                await unit.read("SHARE", unit.answered(share, "no.ema.share.receipt.v1"))
                receipts = unit.answers(share, "no.ema.share.receipt.v1")
                if receipts:
                    print(
                        f"share with {args.school}: {receipts[0]['data']['outcome']} "
                        f"({receipts[0]['data']['message_en']})"
                    )
                else:
                    missing.append("the share request's receipt")
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
