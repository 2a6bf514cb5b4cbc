"""No Docker engine runs here: check docker-compose.yml for consistency instead."""

import re
from pathlib import Path

import yaml

from deploy.launcher import SERVICES
from services.consent.app import ConsentSettings
from services.kit.settings import Settings
from services.notify.app import NotifySettings
from services.planning.app import PlanningSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
FIELDS = {
    *Settings.model_fields,
    *PlanningSettings.model_fields,
    *NotifySettings.model_fields,
    *ConsentSettings.model_fields,
}
SETTINGS = {f"EMA_{name.upper()}" for name in FIELDS}


def test_every_part_of_the_system_is_there() -> None:
    assert {"nats", "opa", "postgres", *SERVICES} <= set(COMPOSE["services"])


def test_every_variable_is_documented_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, re.M))
    assert used <= documented, f"undocumented: {used - documented}"


def test_services_read_only_settings_that_exist() -> None:
    for name in SERVICES:
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= SETTINGS, f"{name}: unknown settings {set(env) - SETTINGS}"
        assert env["EMA_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["EMA_DATABASE_URL"].endswith(f"/{name}")
        port = env["EMA_HTTP_PORT"]
        assert COMPOSE["services"][name]["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert COMPOSE["services"][name]["build"]["args"]["SERVICE"] == name


def test_every_database_is_created_and_every_file_exists() -> None:
    init = (ROOT / "deploy/postgres/init.sql").read_text()
    for name in SERVICES:
        assert f"CREATE DATABASE {name};" in init
    for svc in COMPOSE["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in COMPOSE["volumes"], source
    assert (ROOT / "deploy/Dockerfile").exists()


def test_infrastructure_has_health_checks_and_services_wait_for_them() -> None:
    for name in ("nats", "opa", "postgres"):
        assert "healthcheck" in COMPOSE["services"][name]
    assert "HEALTHCHECK" in (ROOT / "deploy/Dockerfile").read_text()
    for name in SERVICES:
        deps = COMPOSE["services"][name]["depends_on"]
        assert deps["nats"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
