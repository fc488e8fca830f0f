#!/usr/bin/env bash
# schemathesis (PyPI) for scripts/api-schema-check.sh: the REST API against its OpenAPI document.
set -euo pipefail
command -v schemathesis >/dev/null 2>&1 && exit 0
PIP=(python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || PIP=(pip3)
echo "installing schemathesis"
"${PIP[@]}" install --quiet --disable-pip-version-check schemathesis || "${PIP[@]}" install --quiet --break-system-packages schemathesis
