# Shared by deploy/dev/kube-*.sh: where the dev/test Kubernetes cluster keeps its state, and how
# its processes are started and stopped. Everything lives in one state directory; nothing of the
# cluster is written elsewhere except what kube-up.sh records and kube-down.sh puts back.

KUBE_STATE=${ENTRY_KUBE_STATE:-/var/lib/entry/kube}
KUBE_PORT=6443
KUBE_API=https://127.0.0.1:$KUBE_PORT
# Uncommon ports, so a developer's own etcd on 2379 is left alone.
ETCD_CLIENT=127.0.0.1:12379
ETCD_PEER=127.0.0.1:12380
KUBE_SOCK=$KUBE_STATE/run/docker.sock
# Locks live in /run/lock (cleared at boot) rather than beside the state, so kube-down.sh can
# remove the state without pulling a lock from under a waiting script.
KUBE_LOCK=/run/lock/entry-kube.$(printf %s "$KUBE_STATE" | cksum | cut -d' ' -f1)
KUBE_PAUSE_IMAGE=entry-kube-pause:1
# The cluster's components, in start order.
KUBE_COMPONENTS=(dockerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

kdocker() { docker -H "unix://$KUBE_SOCK" "$@"; }

pidfile() { echo "$KUBE_STATE/run/$1.pid"; }

# The pid of a running component, only if that process is still the one started for this state
# directory (its command line names the directory), so a reused pid is never taken for ours.
component_pid() {
  local f pid
  f=$(pidfile "$1")
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline | grep -qF "$KUBE_STATE" || return 1
  echo "$pid"
}

# Starts a component in a session of its own, logging to log/NAME.log; its pid goes to run/NAME.pid.
start_component() {
  local name=$1; shift
  mkdir -p "$KUBE_STATE/run" "$KUBE_STATE/log" "$KUBE_STATE/tmp"
  # fd 9 is the caller's lock: a daemon must not hold it after the script ends.
  local f i
  f=$(pidfile "$name")
  rm -f "$f"
  # Temporary files in the state, not in the caller's TMPDIR: runc keeps an exec's state and
  # console socket there, and a test run's TMPDIR is removed as that run ends while the cluster
  # serves the runs that share it.
  TMPDIR=$KUBE_STATE/tmp setsid bash -c 'echo $$ >"$0.new" && mv "$0.new" "$0"; exec "$@"' "$f" "$@" \
    >>"$KUBE_STATE/log/$name.log" 2>&1 </dev/null 9>&- &
  # The pid file is what says the component runs: wait until it is there.
  for ((i = 0; i < 100; i++)); do [[ -s $f ]] && return 0; sleep 0.05; done
  log "$name did not start"; return 1
}

# Whether a process runs. An exited daemon stays a zombie until init reaps it, which can take
# seconds here: a zombie counts as gone.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# Stops a component started by start_component: TERM, then KILL after a grace period.
stop_component() {
  local name=$1 grace=${2:-10} pid i
  if pid=$(component_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

# Polls CMD until it succeeds; fails after TIMEOUT seconds, or at once when COMPONENT has exited.
wait_for() {
  local what=$1 timeout=$2 component=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$component" ]] && ! component_pid "$component" >/dev/null; then
      log "$component exited while waiting for $what; last lines of $KUBE_STATE/log/$component.log:"
      tail -25 "$KUBE_STATE/log/$component.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      [[ -n "$component" ]] && tail -25 "$KUBE_STATE/log/$component.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

kube_api() {
  curl -sf --cacert "$KUBE_STATE/pki/ca.crt" -H "Authorization: Bearer $(<"$KUBE_STATE/admin.token")" \
    "$KUBE_API$1"
}
