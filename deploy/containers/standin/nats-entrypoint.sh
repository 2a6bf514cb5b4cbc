#!/bin/sh
# As the official image: flags alone mean flags for nats-server.
case "$1" in -*) set -- nats-server "$@" ;; esac
exec "$@"
