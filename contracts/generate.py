"""Generate the JSON Schemas and the AsyncAPI 3 document from the models.

python -m contracts.generate          # write them
python -m contracts.generate --check  # exit 1 if the checked-in files differ
"""

from __future__ import annotations

import json
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
            HEADER_SIGNATURE: {"type": "string",
                               "description": "Base64 Ed25519 signature over the exact body."},
            HEADER_CORRELATION: {"type": "string"},
        },
    }  # fmt: skip
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
        channel: dict[str, Any] = {
            "address": c.subject,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        if "{unit}" in c.subject:
            channel["parameters"] = {"unit": {"description": "Id of the addressed unit."}}
        channels[cid] = channel
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
        },  # fmt: skip
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEvent": CloudEvent.model_json_schema(), "Headers": headers},
            "messages": messages,
        },
    }


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files = {SCHEMA_DIR / name: render(schema) for name, schema in schemas().items()}
    files[ASYNCAPI] = render(asyncapi())
    return files


def main(argv: list[str]) -> int:
    files = expected_files()
    if "--check" in argv:
        stale = [str(p) for p, text in files.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]  # fmt: skip
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
