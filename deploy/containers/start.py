"""Entry point of every service container: `python -m deploy.containers.start <service>`, the
service named literally by its image's target (deploy/Dockerfile). Reads the service's own
database credentials (/secrets/env, written by deploy/containers/provision.py) into the
environment and runs the service; it logs in to NATS as itself with the key and user JWT the
provision step put in its own keys volume (/data/keys). Refuses to start when those
credentials belong to another service: then the image is not the service the container was
meant to run.

    python -m deploy.containers.start intake                 # the service (the image's command)
    python -m deploy.containers.start intake emaflyt db current --service intake
                                                             # a command with its credentials
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SECRETS = Path(os.environ.get("EMA_SECRETS_DIR", "/secrets"))


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m deploy.containers.start SERVICE [COMMAND ...]", file=sys.stderr)
        return 2
    service, command = argv[0], argv[1:]
    env_file = SECRETS / "env"
    if env_file.exists():
        values = read_env(env_file)
        owner = values.pop("EMAFLYT_SERVICE", None)
        if owner != service:
            print(
                f"start: this image runs {service}, but the credentials in {SECRETS} are "
                f"{owner}'s: the container has the wrong image",
                file=sys.stderr,
            )
            return 78
        os.environ.update(values)
    if command:
        os.execvp(command[0], command)
    os.execv(sys.executable, [sys.executable, "-m", f"services.{service}"])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
