"""Generate the JSON Schemas and the AsyncAPI 3 document from the models, and the tables of
contracts/README.md that come from data (what each purpose may receive, from the consent
policy data; measure, care-need, region and pathway codes, from the services' data files).

python -m contracts.generate          # write them
python -m contracts.generate --check  # exit 1 if the checked-in files differ
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from contracts.envelope import (
    HEADER_CORRELATION,
    HEADER_KEY_ID,
    HEADER_MSG_ID,
    HEADER_SIGNATURE,
    CloudEvent,
)
from contracts.registry import CONTRACTS, STREAMS

HERE = Path(__file__).parent
SCHEMA_DIR = HERE / "schemas"
ASYNCAPI = HERE / "asyncapi.json"
README = HERE / "README.md"
ROOT = HERE.parent
POLICY_DATA = ROOT / "services" / "consent" / "policies" / "data.json"
MUNICIPALITY_DATA = ROOT / "services" / "municipality" / "data"
PATHWAYS = ROOT / "services" / "planning" / "pathways"
VERSION = "0.1.0"


def schemas() -> dict[str, dict[str, Any]]:
    out = {"envelope.json": CloudEvent.model_json_schema()}
    for c in CONTRACTS:
        schema = c.model.model_json_schema()
        schema["$id"] = f"https://emaflyt.no/contracts/{c.type}.json"
        schema["x-message-type"] = c.type
        schema["x-subject"] = c.subject
        schema["x-senders"] = sorted(k.value for k in c.senders)
        out[f"{c.type}.json"] = schema
    return out


def _channel_id(subject: str) -> str:
    return subject.replace(".", "_").replace("{unit}", "unit")


def asyncapi() -> dict[str, Any]:
    headers = {
        "type": "object",
        "required": [HEADER_MSG_ID, HEADER_KEY_ID, HEADER_SIGNATURE],
        "properties": {
            HEADER_MSG_ID: {"type": "string", "description": "Equals the CloudEvent id."},
            HEADER_KEY_ID: {"type": "string", "description": "<unit-id>/<kid> of the signer."},
            HEADER_SIGNATURE: {
                "type": "string",
                "description": "Base64 Ed25519 signature over the exact body.",
            },
            HEADER_CORRELATION: {"type": "string"},
        },
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for c in CONTRACTS:
        name = c.type.replace(".", "_").replace("-", "_")
        data_schema = c.model.model_json_schema()
        envelope = {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {"type": "object", "properties": {"type": {"const": c.type}, "data": data_schema}},
            ]
        }
        messages[name] = {
            "name": c.type,
            "title": c.model.__name__,
            "summary": c.summary,
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/Headers"},
            "payload": envelope,
            "x-senders": sorted(k.value for k in c.senders),
        }
        cid = _channel_id(c.subject)
        # Two versions of a message may share a subject (a unit reads the one it chose).
        channel: dict[str, Any] = channels.setdefault(cid, {"address": c.subject, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        if "{unit}" in c.subject:
            channel["parameters"] = {"unit": {"description": "Id of the addressed unit."}}
        operations[f"send_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{c.summary} Senders: {', '.join(sorted(k.value for k in c.senders))}.",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "emaflyt",
            "version": VERSION,
            "description": "Messages between care centres, Bufetat, municipalities and the "
            "emaflyt services. CloudEvents 1.0 structured JSON over NATS JetStream; every "
            "message signed with Ed25519. Streams: "
            + "; ".join(f"{s.name} ({', '.join(s.subjects)})" for s in STREAMS),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The embedded system started by `make up`.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEvent": CloudEvent.model_json_schema(), "Headers": headers},
            "messages": messages,
        },
    }


# -- the README's generated tables ----------------------------------------------------------


def _codes(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def sharing_section() -> str:
    """What each purpose may receive (K11) and the statutes that release without consent, from
    the consent broker's policy data (services/consent/policies/data.json)."""
    from contracts.messages import DataCategory

    legal = json.loads(POLICY_DATA.read_text(encoding="utf-8"))["legal"]
    lines = [
        f"Policy data version `{legal['data_version']}`, valid until "
        f"{legal['valid_until'][:10]} (after that the broker withholds everything until it is "
        "renewed).",
        "",
        "| purpose | data category | fields the recipient may receive |",
        "|---|---|---|",
    ]
    for purpose, lists in sorted(legal["minimise"].items()):
        for category, fields in sorted(lists.items(), key=lambda kv: (kv[0] == "*", kv[0])):
            what = "any category" if category == "*" else f"`{category}`"
            lines.append(f"| `{purpose}` | {what} | {_codes(fields)} |")
    listed = {c for lists in legal["minimise"].values() for c in lists}
    never = [c.value for c in DataCategory if c.value not in listed]
    lines += [
        "",
        "Any other pair of purpose and category releases nothing, whatever the consent says; "
        "so does a purpose not in the table. Within a pair, the broker keeps only the listed "
        "top-level fields of your JSON object and drops the rest"
        + (f" (categories in no list: {_codes(never)})." if never else "."),
        "",
        "Released **without consent** when the statute applies (give its id as "
        "`claimed_basis` where a claim is needed):",
        "",
        "| `claimed_basis` | purposes | categories | from | to | claim needed | statute |",
        "|---|---|---|---|---|---|---|",
    ]
    for sid, st in sorted(legal["statutes"].items()):
        lines.append(
            f"| `{sid}` | {_codes(st['purposes'])} | {_codes(st['categories'])} | "
            f"{_codes(sorted(st['source_sectors']))} | "
            f"{_codes(sorted(st['recipient_sectors']))} | "
            f"{'yes' if st['requires_claim'] else 'no'} | {st['ref']} |"
        )
    glass = legal["break_the_glass"]
    obligations = ", ".join(
        o["kind"] + (f" within {o['within_hours']} h" if o.get("within_hours") else "")
        for o in glass["obligations"]
    )
    lines += [
        "",
        f'Break-the-glass (`break_the_glass: {{"justification": ...}}`): purposes '
        f"{_codes(glass['purposes'])}, from {_codes(glass['source_sectors'])}; always with "
        f"obligations ({obligations}). {glass['ref']}.",
        "",
        "Everything else needs a consent registered for the case that covers the flow "
        "(its `scope` names the category, source, recipient and purpose) and no refusal that "
        "matches it.",
    ]
    return "\n".join(lines)


def codes_section() -> str:
    """Measure, care-need, region and pathway codes, from the services' data files."""
    measures = json.loads((MUNICIPALITY_DATA / "measures.json").read_text(encoding="utf-8"))
    register = json.loads((MUNICIPALITY_DATA / "municipalities.json").read_text(encoding="utf-8"))
    lines = [
        "**Measures** (`measure`, `offers[].measure`, `recommended_measure`):",
        "",
        "| code | bokmål | English |",
        "|---|---|---|",
    ]
    lines += [f"| `{x['code']}` | {x['nb']} | {x['en']} |" for x in measures["measures"]]
    lines += [
        "",
        "**Care needs** (`competences`, `care_needs`):",
        "",
        "| code | bokmål | English |",
        "|---|---|---|",
    ]
    lines += [f"| `{x['code']}` | {x['nb']} | {x['en']} |" for x in measures["care_needs"]]
    counts: dict[str, int] = {}
    for mun in register["municipalities"]:
        counts[mun["bufetat_region"]] = counts.get(mun["bufetat_region"], 0) + 1
    lines += [
        "",
        "**Bufetat regions** (`bufetat_region`, UTF-8 as written): "
        + ", ".join(f"`{r}` ({n} municipalities)" for r, n in sorted(counts.items()))
        + ".",
        "",
        f"**Municipalities** (`kommunenummer`, four digits; unit id `kommune-<kommunenummer>`): "
        f"the {len(register['municipalities'])} of {register['source'].split(';')[0]}.",
        "",
        "**Pathways and tasks** (`pathway`, `milestone`, `task`). The main pathway starts with "
        "the arrival; its milestones are reported by their own messages (KOPP, follow-up "
        "decision, MAP, changed need, residence, settlement). The others start with "
        "`no.ema.planning.pathway-started.v1` (milestone `admission`) and move on with "
        "`no.ema.planning.milestone-reported.v1`. A task is reported done with "
        "`no.ema.planning.task-completed.v1` by the unit responsible for it: `care_centre` is "
        "the case's centre, `bufetat_*` the Bufetat unit (`bufetat-ost` unless the operator "
        "set another), `representative` the child's representative, any other role the unit "
        "that started the pathway (tasks a later milestone starts: the case's care centre).",
        "",
        "| pathway | milestones | tasks (responsible role) |",
        "|---|---|---|",
    ]
    files = sorted(PATHWAYS.glob("*.json"), key=lambda p: (p.stem != "ema-care-centre", p.stem))
    for path in files:
        pw = json.loads(path.read_text(encoding="utf-8"))
        tasks = ", ".join(f"`{s['task']}` ({s['responsible']})" for s in pw["steps"])
        lines.append(f"| `{pw['id']}` | {_codes(list(pw['milestones']))} | {tasks} |")
    return "\n".join(lines)


README_SECTIONS = {"sharing": sharing_section, "codes": codes_section}


def _wrapped(text: str) -> str:
    """Prose lines wrapped at 96 columns like the rest of the README; tables as they are."""
    import textwrap

    out = []
    for line in text.split("\n"):
        if line.startswith("|") or len(line) <= 96:
            out.append(line)
        else:
            out.append(textwrap.fill(line, 96, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def readme_text(text: str) -> str:
    """The README with every generated section (between `<!-- generated:NAME -->` and
    `<!-- /generated:NAME -->`) written from its data."""
    for name, make in README_SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} [^>]*-->\n)(.*?)(<!-- /generated:{name} -->)", re.S
        )
        if not pattern.search(text):
            raise LookupError(f"contracts/README.md has no generated section {name!r}")
        body = _wrapped(make())
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
    return text


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files = {SCHEMA_DIR / name: render(schema) for name, schema in schemas().items()}
    files[ASYNCAPI] = render(asyncapi())
    files[README] = readme_text(README.read_text(encoding="utf-8"))
    return files


def main(argv: list[str]) -> int:
    files = expected_files()
    if "--check" in argv:
        stale = [
            str(p)
            for p, text in files.items()
            if not p.exists() or p.read_text(encoding="utf-8") != text
        ]
        extra = sorted(set(SCHEMA_DIR.glob("*.json")) - set(files))
        for path in stale:
            print(f"out of date: {path}")
        for path in extra:
            print(f"no model for: {path}")
        return 1 if stale or extra else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
