#!/bin/sh
# Production entry point (Docker CMD, Render). Migrates, then serves the API on $HOST:$PORT: one
# interpreter does both (`serve` applies the migrations under the cross-process lock before it opens
# the port; a separate `migrate` process cost a second interpreter start-up and every import twice).
# TELEGRAM_MODE=polling (default) also runs the polling bot in the same process when
# TELEGRAM_BOT_TOKEN is set; TELEGRAM_MODE=webhook runs only the API (updates arrive at the webhook).
# `exec` hands PID 1 to Python so SIGTERM from Docker/Render reaches it and it stops cleanly.
set -eu
cd "$(dirname "$0")"

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

exec "$PYTHON" -m adapters.main serve
