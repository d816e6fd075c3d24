#!/bin/sh
# The API container's start (infra/docker/Dockerfile): apply the migrations the image carries to DATABASE_URL
# (each once; several replicas starting together wait on the migration lock), then become the server: `exec`, so
# that `docker stop` (SIGTERM) reaches uvicorn, which closes the streams and exits cleanly.
# Given a command instead, run that: `docker compose run --rm api journal tail --url ws://api:8000/ws`.
set -eu
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
journal migrate
exec journal serve --host 0.0.0.0 --port "${JOURNAL_PORT:-8000}"
