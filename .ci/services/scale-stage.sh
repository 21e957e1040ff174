#!/usr/bin/env bash
# The scale stage of `make test`: start the services (their own profile file, so a developer's
# `make services` is left alone), run the tests marked `scale` on them, stop them even when a
# test fails or the stage is interrupted.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export SCOREHOUSE_SERVICES_ENV="$ROOT/.scorehouse/test-services.env"
SERVICES="$ROOT/.ci/services/services.sh"
bash "$SERVICES" stop >/dev/null 2>&1 || true  # a stage killed earlier left its services
trap 'bash "$SERVICES" stop' EXIT
bash "$SERVICES" start
SCOREHOUSE_PROFILE_FILE="$SCOREHOUSE_SERVICES_ENV" SCOREHOUSE_SCALE_REQUIRED=1 \
  "$ROOT/.venv/bin/pytest" -m scale "$@"
