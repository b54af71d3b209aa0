#!/usr/bin/env bash
# Builds the Docker Compose v2 CLI from its Go module (github.com/docker/compose/v2, through the
# Go module proxy) once per machine and caches it in the user's cache folder
# (~/.cache/kgrec/docker-compose/<version>/), so the test of docker/compose.yaml can run
# `docker compose config` on machines that have the docker client but no compose plugin and no
# engine (`config` needs neither an engine nor a daemon). About 5 min of CPU on 2 cores.
#
# Prints the binary's path on success. Without Go it builds nothing and exits 1 with the reason.
# `--check` only prints the cached binary's path (exit 1 when there is none).
set -euo pipefail
VERSION=v2.40.3
dest=${KGREC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kgrec}/docker-compose/$VERSION
bin=$dest/docker-compose
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "no docker compose built in $dest; run bash tools/build_compose.sh" >&2
  exit 1
fi
command -v go >/dev/null 2>&1 || { echo "build_compose.sh: 'go' not found; install Go >= 1.24" >&2; exit 1; }
mkdir -p "$dest"
echo "building docker compose $VERSION from the Go module proxy (once per machine; cached in $dest)" >&2
# The module's go.mod has exclude directives, so `go install pkg@version` refuses it: build it
# as the main module from its downloaded source instead.
src=$(go mod download -json "github.com/docker/compose/v2@$VERSION" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
(cd "$src" && go build -trimpath -ldflags "-X github.com/docker/compose/v2/internal.Version=$VERSION" \
   -o "$bin.tmp" ./cmd)
mv "$bin.tmp" "$bin"
"$bin" version >&2
echo "$bin"
