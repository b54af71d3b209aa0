#!/usr/bin/env bash
# Builds the two programs only the tests need, once per machine, cached in ~/.cache/kgrec/ (so a
# fresh clone on the same machine reuses them; a second run finds both and returns at once):
#   - llama.cpp's OpenAI-compatible server, for the llm-http backend's real-server test
#     (tools/build_llama_server.sh: needs cmake and a C++ compiler);
#   - the Docker Compose CLI, for `docker compose config` on docker/compose.yaml
#     (tools/build_compose.sh: needs Go).
# Part of README's test command; the demo and the docker image do not need either.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build_llama_server.sh >/dev/null
if docker compose version >/dev/null 2>&1; then
  echo "docker compose plugin present: using it" >&2
else
  bash tools/build_compose.sh >/dev/null
fi
echo "test tools ready: $(bash tools/build_llama_server.sh --check), compose: $(docker compose version 2>/dev/null || bash tools/build_compose.sh --check)"
