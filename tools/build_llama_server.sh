#!/usr/bin/env bash
# Builds llama.cpp's own OpenAI-compatible server (`llama-server`) once per machine and caches it
# in the user's cache folder (~/.cache/kgrec/llama-server/<version>-<cpu>/, outside the clone, so
# a fresh clone on the same machine, as CI makes, reuses it), for the llm-http backend's
# real-server test (tests/text/test_llm_backends.py), which runs it on loopback with the SmolLM2
# GGUF.
#
# Why this server: it enforces `response_format: {"type": "json_schema", ...}` with a grammar,
# the OpenAI form our client sends. `transformers serve` ignores response_format (SmolLM2-135M then
# echoes the input instead of answering JSON) and llama-cpp-python's Python server accepts only
# `json_object`. PyPI has no llama.cpp binary we trust, so the source comes from the
# llama-cpp-python sdist (PyPI, pinned below), which vendors llama.cpp; only the server target
# is compiled (51 min on 2 cores shared with other jobs at load 9-15, perhaps 10-15 min on an idle
# box; a second run finds the binary and exits at once).
#
# Needs cmake (>= 3.21) and a C++17 compiler. Prints the binary's path on success.
# `--check` only prints the cached binary's path, and exits 1 (building nothing) when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
# -march=native: the binary is tied to this CPU, so the cache folder is keyed by its flags.
cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | sha256sum | cut -c1-12)
dest=${KGREC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kgrec}/llama-server/$VERSION-$cpu
if [ -x "$dest/llama-server" ] && "$dest/llama-server" --version >/dev/null 2>&1; then
  echo "$dest/llama-server"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "no llama-server built for this CPU in $dest; run bash tools/build_llama_server.sh" >&2
  exit 1
fi
for tool in cmake c++; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build_llama_server.sh: '$tool' not found; install cmake and a C++ compiler (apt-get install cmake g++)" >&2
    exit 1
  }
done
# The work folder survives a failed or killed build, so the next run resumes the compile.
work=$dest.work
mkdir -p "$work"
echo "building llama-server from llama-cpp-python==$VERSION (once per machine; cached in $dest)" >&2
src=$work/llama_cpp_python-$VERSION/vendor/llama.cpp
if [ ! -f "$src/CMakeLists.txt" ]; then
  PY=.venv/bin/python
  [ -x "$PY" ] || PY=python3
  "$PY" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work" >&2
  tar -xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
fi
# No web UI (it would be fetched from the network), no HTTPS, no tests or examples: the server only.
cmake -S "$src" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_CCACHE=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF >"$work/configure.log" 2>&1 \
  || { tail -30 "$work/configure.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.tmp"
mkdir "$dest.tmp"
cp "$work/build/bin/llama-server" "$dest.tmp/"
"$dest.tmp/llama-server" --version >/dev/null 2>&1
rm -rf "$dest"
mv "$dest.tmp" "$dest"  # appears whole or not at all: a killed build leaves no half binary
rm -rf "$work"
echo "$dest/llama-server"
