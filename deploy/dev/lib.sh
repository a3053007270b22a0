# Shared by deploy/dev/*.sh: install and start what Entry needs on a Debian 12 machine.
# Everything here is idempotent: a machine that already has it is left as it is.

log() { printf '\033[1m[entry]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are missing, never removing or replacing any (--no-remove), and
# without starting or enabling their services: the scripts start their own dockerd, Redis, nginx,
# sshd and etcd, and a packaged one left on 0.0.0.0:80/:22 or 127.0.0.1:2379 would outlive them.
ensure_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    install_without_services "${missing[@]}"
  fi
}

# Ends the script (or subshell) on HUP, INT and TERM with the usual status, through its EXIT
# trap: bash runs none for a signal it dies of.
exit_on_signals() {
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

installed_packages() {
  dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' | awk '$2 == "installed" { print $1 }' | sort
}

# In a subshell, so its traps leave the caller's alone.
install_without_services() (
  local policy=/usr/sbin/policy-rc.d created="" before unit
  # A policy-rc.d that exits 101 is Debian's way to tell maintainer scripts not to start
  # services (invoke-rc.d, deb-systemd-invoke). One already there (the host's) is left as it is.
  remove_policy() { if [[ -n $created ]]; then as_root rm -f "$policy"; fi; }
  trap remove_policy EXIT
  exit_on_signals
  # noclobber: created only if none exists, so a host's own file is never overwritten or removed.
  if as_root bash -c 'set -C; printf "#!/bin/sh\n# deploy/dev/lib.sh: no service starts during its apt-get install\nexit 101\n" >"$1" && chmod 0755 "$1"' _ "$policy" 2>/dev/null; then
    created=1
  fi
  before=$(installed_packages)
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends --no-remove "$@" >/dev/null
  # policy-rc.d does not stop postinst from enabling units (they would start at the next boot):
  # disable those of the packages installed just now, dependencies included; units of packages
  # that were already installed are the host's and stay as they are.
  command -v systemctl >/dev/null || return 0
  for unit in $(comm -13 <(printf '%s\n' "$before") <(installed_packages) | xargs -r dpkg-query -L 2>/dev/null \
      | grep -E '^(/usr)?/lib/systemd/system/[^/@]+\.(service|socket|timer|path)$' | xargs -r -n1 basename | sort -u); do
    if [[ "$(systemctl is-enabled "$unit" 2>/dev/null)" == enabled ]]; then
      log "disabling $unit (installed just now; the scripts start what they need themselves)"
      as_root systemctl disable --quiet "$unit" || true
    fi
  done
)

# Debian's docker.io when there is no engine (dockerd) yet. A docker client on its own (a binary
# in /usr/local/bin, as some images ship) is left in place and talks to that engine. Another
# engine package (Docker's docker-ce) is never replaced: apt-get runs with --no-remove and
# refuses instead.
ensure_docker_binaries() {
  if command -v dockerd >/dev/null && command -v docker >/dev/null; then return 0; fi
  ensure_packages docker.io && return 0
  log "could not install Debian's docker.io beside what is installed: install a Docker engine (dockerd)"
  return 1
}

# Starts dockerd when no engine answers. Sets STARTED_DOCKERD_PID when it started one.
STARTED_DOCKERD_PID=""
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  ensure_docker_binaries || return 1
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

# TERM to a process this script started and to everything under it (found by parent pid), then
# waits for it: a background build's make and compilers go with it.
stop_tree() {
  local pid=$1 pids=()
  kill -0 "$pid" 2>/dev/null || return 0
  stop_tree_collect() { local c; pids+=("$1"); for c in $(pgrep -P "$1" || true); do stop_tree_collect "$c"; done; }
  stop_tree_collect "$pid"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The others are not this shell's children: watched until they are gone (or only a zombie
  # waiting for its parent), 10 s at most.
  local p i
  for p in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do running_pid "$p" || break; sleep 0.1; done
  done
}

# Whether a process runs (exists and is not a zombie).
running_pid() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
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
