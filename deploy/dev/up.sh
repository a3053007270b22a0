#!/usr/bin/env bash
# Runs Entry for a try-out: Docker engine, demo containers, a broker in dev mode on
# 127.0.0.1:8022 with a token saved for you, and `enter` on your PATH, in the foreground.
# ENTRY_KUBE=1 also starts the dev Kubernetes cluster (deploy/dev/kube-up.sh: about ten minutes
# the first time, to build it) with a demo StatefulSet, and serves its pods too: `enter shop web 0`.
# Ctrl-C (or SIGTERM, or any way it ends) stops what it started: the broker, the cluster, and the
# dockerd when it had to start one (the demo containers stop with it; on an engine that was
# already running they stay, kept for the next run).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/dev/lib.sh"

broker=""
kube=""
stop() {
  trap '' INT TERM HUP
  if [[ -n $broker ]]; then kill "$broker" 2>/dev/null && wait "$broker" || true; fi
  if [[ -n $kube ]]; then bash "$root/deploy/dev/kube-down.sh" || true; fi
  stop_started_dockerd || true
}
trap stop EXIT
exit_on_signals

ensure_packages busybox-static tmux
ensure_docker
ensure_node_modules "$root"
bash "$root/deploy/dev/demo-image.sh"
ensure_demo_containers
# `enter` and `entry-broker` on PATH, pointing at this checkout.
ln -sf "$root/dist/bin/enter.js" /usr/local/bin/enter
ln -sf "$root/dist/broker/main.js" /usr/local/bin/entry-broker
backends=()
if [[ "${ENTRY_KUBE:-}" == 1 ]]; then
  kube=1
  bash "$root/deploy/dev/kube-up.sh"
  kubeconfig=/var/lib/entry/kube/kubeconfig
  kubectl=("$(bash "$root/deploy/dev/kube-build.sh" --print)/kubectl" --kubeconfig "$kubeconfig")
  # A StatefulSet of two demo pods named by the standard labels: shop/web/0 and shop/web/1.
  "${kubectl[@]}" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: shop}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: shop, app.kubernetes.io/component: web}}
  template:
    metadata: {labels: {app.kubernetes.io/name: shop, app.kubernetes.io/component: web}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 0
      containers: [{name: main, image: "entry-demo:latest", imagePullPolicy: IfNotPresent}]
YAML
  "${kubectl[@]}" -n shop rollout status statefulset/web --timeout=120s >/dev/null
  log "Kubernetes: pods shop/web/0 and shop/web/1 (enter shop web 0)"
  backends=(--kubeconfig "$kubeconfig" --docker-host unix:///var/run/docker.sock)
fi
url="http://127.0.0.1:${ENTRY_PORT:-8022}"
token_file="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/entry-dev-token-$(id -u)"
rm -f "$token_file"
log "broker starting on $url; in another terminal: enter demo web 1"
MALLOC_ARENA_MAX=2 node --max-semi-space-size=4 --no-concurrent-array-buffer-sweeping --heap-growing-percent=20 "$root/dist/broker/main.js" --dev --listen "127.0.0.1:${ENTRY_PORT:-8022}" --dev-token-file "$token_file" "${backends[@]}" &
broker=$!
# The token file appears once the broker has its key; hand it to the CLI's login.
until [[ -s "$token_file" ]]; do
  kill -0 "$broker" 2>/dev/null || { wait "$broker"; exit $?; }
  sleep 0.1
done
node "$root/dist/bin/enter.js" login --broker "$url" < "$token_file" >/dev/null
rm -f "$token_file"
wait "$broker"
