#!/usr/bin/env bash
# Runs Entry for a try-out: Docker engine, demo containers, a broker in dev mode on
# 127.0.0.1:8022 with a token saved for you, and `enter` on your PATH. Ctrl-C stops the broker.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/dev/lib.sh"

ensure_packages busybox-static docker.io tmux
ensure_docker
ensure_node_modules "$root"
bash "$root/deploy/dev/demo-image.sh"
ensure_demo_containers
# `enter` and `entry-broker` on PATH, pointing at this checkout.
ln -sf "$root/dist/client/cli/main.js" /usr/local/bin/enter
ln -sf "$root/dist/broker/main.js" /usr/local/bin/entry-broker
url="http://127.0.0.1:${ENTRY_PORT:-8022}"
token_file="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/entry-dev-token-$(id -u)"
rm -f "$token_file"
log "broker starting on $url; in another terminal: enter demo web 1"
node --max-semi-space-size=4 "$root/dist/broker/main.js" --dev --listen "127.0.0.1:${ENTRY_PORT:-8022}" --dev-token-file "$token_file" &
broker=$!
trap 'kill "$broker" 2>/dev/null; wait "$broker"' INT TERM
# The token file appears once the broker has its key; hand it to the CLI's login.
until [[ -s "$token_file" ]]; do
  kill -0 "$broker" 2>/dev/null || { wait "$broker"; exit $?; }
  sleep 0.1
done
node "$root/dist/client/cli/main.js" login --broker "$url" < "$token_file" >/dev/null
rm -f "$token_file"
wait "$broker"
