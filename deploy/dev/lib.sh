# Shared by deploy/dev/*.sh: install and start what Entry needs on a Debian 12 machine.
# Everything here is idempotent: a machine that already has it is left as it is.

log() { printf '\033[1m[entry]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are missing.
ensure_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Starts dockerd when no engine answers. Sets STARTED_DOCKERD_PID when it started one.
STARTED_DOCKERD_PID=""
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || ensure_packages docker.io
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (log: /var/log/entry-dockerd.log)"
  as_root bash -c 'setsid nohup dockerd >/var/log/entry-dockerd.log 2>&1 </dev/null & echo $! >/run/entry-dockerd.pid'
  STARTED_DOCKERD_PID=$(cat /run/entry-dockerd.pid)
  local i
  for i in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
      log "dockerd exited; last lines of its log:"; tail -20 /var/log/entry-dockerd.log >&2; return 1
    fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s"; return 1
}

stop_started_dockerd() {
  if [[ -n "$STARTED_DOCKERD_PID" ]] && kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
    log "stopping the dockerd this script started"
    as_root kill "$STARTED_DOCKERD_PID"
    local i
    for i in $(seq 1 60); do kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || return 0; sleep 0.5; done
  fi
}

# npm packages exactly as the lockfile says, then the build (TypeScript and the web console).
ensure_node_modules() {
  local root=$1
  if [[ ! -d "$root/node_modules" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
    log "installing npm packages from the lockfile"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  log "building"
  (cd "$root" && npm run --silent build && chmod +x dist/broker/main.js dist/bin/enter.js)
}

# Starts the labelled demo containers (entry.app=demo entry.proc=web entry.instance=1..2).
ensure_demo_containers() {
  local i
  for i in 1 2; do
    local name="entry-demo-web-$i"
    # Kept when running from the current demo image; replaced otherwise.
    if [[ "$(docker inspect -f '{{.State.Running}} {{.Image}}' "$name" 2>/dev/null)" == "true $(docker image inspect -f '{{.Id}}' entry-demo:latest)" ]]; then continue; fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "demo-web-$i" --network none \
      --label entry.app=demo --label entry.proc=web --label "entry.instance=$i" \
      entry-demo:latest >/dev/null
  done
  log "demo containers running: demo/web/1, demo/web/2"
}
