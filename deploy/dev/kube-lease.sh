#!/usr/bin/env bash
# Shares the dev cluster between test runs that overlap: each run holds a lease named by its pid.
#   kube-lease.sh acquire PID   start the cluster if it is not up (then it belongs to the leases),
#                               and record PID's lease; prints "started" or "reused"
#   kube-lease.sh release PID   drop PID's lease (and those of runs that have exited); the last
#                               release stops a cluster that a lease started, never one started by hand
# ENTRY_KUBE_KEEP=1 on acquire: a cluster started now is kept up after the last release.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/kube-lib.sh"
cmd=${1:?acquire or release}
pid=${2:?pid}
leases=$KUBE_STATE/leases

# Separate from kube-up/down's own lock, which they take themselves.
exec 8>"$KUBE_LOCK.leases"
flock 8

up() {
  [[ -f $KUBE_STATE/cluster.json && -f $KUBE_STATE/admin.token ]] && kube_api /api/v1/nodes/localhost 2>/dev/null \
    | jq -e '[.status.conditions[] | select(.type == "Ready" and .status == "True")] | length == 1' >/dev/null
}

case "$cmd" in
  acquire)
    if up; then
      state=reused
    else
      # A cluster made now belongs to the leases; one that exists but is not healthy (a test
      # stopped its apiserver, the machine rebooted) may be someone's, started by hand, and is
      # only healed: the last release would remove its state. Marked before it starts, so the
      # release also cleans up after a start that failed half-way.
      if [[ ! -d $KUBE_STATE/pki && "${ENTRY_KUBE_KEEP:-}" != 1 ]]; then
        mkdir -p "$KUBE_STATE"
        touch "$KUBE_STATE/started-by-lease"
      fi
      bash "$here/kube-up.sh" 8>&-
      state=started
    fi
    mkdir -p "$leases"
    touch "$leases/$pid"
    echo "$state"
    ;;
  release)
    rm -f "$leases/$pid"
    for f in "$leases"/*; do
      [[ -e $f ]] || continue
      kill -0 "${f##*/}" 2>/dev/null || rm -f "$f"
    done
    if [[ -f $KUBE_STATE/started-by-lease ]] && ! compgen -G "$leases/*" >/dev/null; then
      bash "$here/kube-down.sh" 8>&-
    fi
    ;;
  *) echo "usage: kube-lease.sh acquire|release PID" >&2; exit 2 ;;
esac
