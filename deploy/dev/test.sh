#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine: installs and starts what it needs
# (Docker engine, Redis, Chromium, tmux from Debian; npm packages from the lockfile), runs the
# type-check and vitest, and stops the dockerd it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/dev/lib.sh"

ensure_packages busybox-static docker.io tmux redis-server chromium nginx openssl openssh-server
# Packaging and CLI checks: systemd-analyze, docker-compose, zsh completion, unzip (for helm).
ensure_packages systemd docker-compose zsh unzip
ensure_docker
trap stop_started_dockerd EXIT
# The Kubernetes suites' cluster binaries, built from Debian's source once per machine (about ten
# minutes the first time, then cached): built while the rest is prepared, awaited before vitest.
bash "$root/deploy/dev/kube-build.sh" >/dev/null &
kube_build=$!
ensure_node_modules "$root"
bash "$root/deploy/dev/demo-image.sh"
bash "$root/deploy/dev/helm.sh" >/dev/null
cd "$root"
npx tsc -p test/tsconfig.json --noEmit
wait "$kube_build" || { log "building the Kubernetes binaries failed (deploy/dev/kube-build.sh)"; exit 1; }
npx vitest run "$@"
