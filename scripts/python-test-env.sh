#!/usr/bin/env bash
# Makes the git-ignored virtual environment .venv-test at the repository root with the PyPI
# packages of scripts/requirements-test.txt (numpy, onnx, onnxruntime, safetensors), which the
# export tests (Tests/ExportTests) and the safetensors interop tests run. `make test` calls it; it does nothing when the environment
# already imports them at the pinned versions. Needs python3 and python3-venv
# (scripts/install-deps.sh --with-python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-test"
requirements="$root/scripts/requirements-test.txt"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp" \
  && "$venv/bin/python" -c "import numpy, onnx, onnxruntime, safetensors" 2>/dev/null; then
  exit 0
fi
echo "aepsl: installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
