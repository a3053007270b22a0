#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine: installs and starts what it needs
# (Debian packages as the README lists them; npm packages from the lockfile), runs the
# type-check and vitest, and stops what it started (the dockerd, a Kubernetes build still running),
# however it ends. Packages are installed without starting or enabling their services.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/dev/lib.sh"

kube_build="" vitest="" run_tmp=""
# Marks the containers the suites start (test/helpers/containers.ts), for the clean-up below.
export ENTRY_TEST_RUN="$$-$(date +%s%N)"
cleanup() {
  trap '' INT TERM HUP
  if [[ -n $kube_build ]]; then stop_tree "$kube_build"; fi
  # Its workers and the brokers, engines and browsers they started go with it, and the
  # containers its suites had no time to remove.
  if [[ -n $vitest ]]; then
    stop_tree "$vitest"
    docker ps -aq --filter "label=entry.test.run=$ENTRY_TEST_RUN" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  # A Kubernetes cluster the suites' leases started is stopped now, not after this returns (the
  # leases' own watchers would do it a moment later); one started by hand stays.
  bash "$root/deploy/dev/kube-lease.sh" release $$ >/dev/null 2>&1 || true
  stop_started_dockerd || true
  if [[ -n $run_tmp ]]; then rm -rf --one-file-system "$run_tmp" || true; fi
}
trap cleanup EXIT
# So that Ctrl-C and kill also run the cleanup.
exit_on_signals

ensure_packages busybox-static tmux redis-server chromium nginx openssl openssh-server
# Packaging and CLI checks: systemd-analyze, docker-compose, zsh completion, unzip (for helm).
ensure_packages systemd docker-compose zsh unzip
ensure_docker
# The Kubernetes suites' cluster binaries, built from Debian's source once per machine (about ten
# minutes the first time, then cached): built while the rest is prepared, awaited before vitest.
bash "$root/deploy/dev/kube-build.sh" >/dev/null &
kube_build=$!
ensure_node_modules "$root"
bash "$root/deploy/dev/demo-image.sh"
bash "$root/deploy/dev/helm.sh" >/dev/null
cd "$root"
npx tsc -p test/tsconfig.json --noEmit
wait "$kube_build" || { kube_build=""; log "building the Kubernetes binaries failed (deploy/dev/kube-build.sh)"; exit 1; }
kube_build=""
# Every temporary file of the run below one folder (the suites' own teardown removes theirs; a
# run stopped before it leaves them here). Traversable as /tmp is: nginx's workers spool in it.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/entry-test-XXXXXX")
chmod 0755 "$run_tmp"
# In the background and waited for: bash runs a trap only once the foreground command returns,
# and a kill must stop the suite now, not after it.
TMPDIR=$run_tmp npx vitest run "$@" &
vitest=$!
status=0
wait "$vitest" || status=$?
vitest=""
exit "$status"
