"""The child welfare service's system (barnevern): open the concern reports and other data
released to it, start an institution stay for a child (a pathway whose tasks come back as
task notices addressed to the service), report the first task done, and report a planned
move-out (the transition tasks it starts go to the units responsible for them).

    python examples/barnevern.py --unit barnevern-demo --key bv.pem \\
        --jwt data/nats/users/barnevern-demo/<kid>.jwt --sealing-key bv-sealing.json \\
        --case CASE_ID [--pathway care-institution]

Pathways, milestones and task codes: contracts/README.md §11. Only nats-py and cryptography.
"""

from __future__ import annotations

from datetime import timedelta

from partner import Partner, arguments, run, today

NOTICE = "no.ema.notify.task-notice.v1"


async def main() -> int:
    p = arguments(__doc__)
    p.add_argument("--case", required=True, help="the child's case id")
    p.add_argument(
        "--pathway",
        default="care-institution",
        choices=["care-institution", "treatment-institution", "emergency-institution"],
    )
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

        await unit.read("SHARE", lambda: bool(deliveries()), wait=min(args.wait, 5))
        for entry in deliveries():
            d = entry["event"]["data"]
            opened = entry.get("opened", {}).get("data", {})
            print(
                f"{d['purpose']} from {d['source_unit']} on {d['legal_basis']}: "
                f"{', '.join(sorted(opened)) or 'not opened'}; obligations "
                f"{[o['kind'] for o in d['obligations']] or 'none'}"
            )

        started = await unit.send(
            "no.ema.planning.pathway-started.v1",
            "ema.planning.pathway.started",
            {"case_id": args.case, "pathway": args.pathway, "started_on": str(today())},
            case_id=args.case,
        )
        await unit.read("NOTIFY", unit.answered(started, NOTICE))
        mine = [
            n["data"]
            for n in unit.answers(started, NOTICE)
            if n["data"]["responsible_unit"] == unit.unit_id
        ]
        for task in sorted(mine, key=lambda t: t["due"]):
            print(f"  task {task['task']:30s} due {task['due']}")
        if not mine:
            missing.append("the pathway's task notices")
        else:
            first = min(mine, key=lambda t: t["due"])
            done = await unit.send(
                "no.ema.planning.task-completed.v1",
                "ema.planning.task.completed",
                {"case_id": args.case, "task": first["task"], "completed_on": str(today())},
                case_id=args.case,
            )
            await unit.read(
                "NOTIFY",
                lambda: any(n["data"]["status"] == "done" for n in unit.answers(done, NOTICE)),
            )
            if not any(n["data"]["status"] == "done" for n in unit.answers(done, NOTICE)):
                missing.append(f"the task notice {first['task']} done")
            await unit.send(
                "no.ema.planning.milestone-reported.v1",
                "ema.planning.milestone.reported",
                {
                    "case_id": args.case,
                    "pathway": args.pathway,
                    "milestone": "move_out_planned",
                    "on": str(today() + timedelta(days=60)),
                },
                case_id=args.case,
            )
    return unit.finish(missing)


if __name__ == "__main__":
    run(main)
