"""The bus permissions follow the code: each service may publish exactly what it emits, and the
checked-in NATS config for containers is generated from the same table."""

import re
from pathlib import Path

from deploy import permissions

ROOT = Path(__file__).resolve().parents[2]
EMIT = re.compile(r'(?:emit|outbox\.add)\([^"]*"(no\.ema\.[a-z.-]+\.v[0-9]+)"')


def test_each_service_may_publish_exactly_the_types_its_code_emits() -> None:
    for service in permissions.SERVICES:
        code = "".join(p.read_text() for p in (ROOT / "services" / service).rglob("*.py"))
        assert sorted(set(EMIT.findall(code))) == sorted(permissions.EMITS[service]), service


def test_checked_in_auth_conf_is_generated() -> None:
    assert permissions.main(["--check"]) == 0, "run python -m deploy.permissions"


def test_the_compose_stack_gives_every_user_its_password(tmp_path: Path) -> None:
    # deploy/containers/provision.py renders this table with a generated password per user.
    from deploy.containers import provision

    pw = provision.passwords(tmp_path)
    provision.write_nats(tmp_path, pw)
    auth = (tmp_path / "nats" / "auth.conf").read_text()
    for user in permissions.users():
        assert f'user: "{user}", password: "{pw[user]}"' in auth
