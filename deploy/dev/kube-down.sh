#!/usr/bin/env bash
# Stops the cluster kube-up.sh started and puts the host back as it was: only the processes named
# in the state directory's pid files (and what they left behind with that directory on their
# command line) are ended, the cluster engine's containers removed, mounts under the state
# directory undone, the kernel settings the kubelet changed restored, and the state removed.
# The cached binaries (kube-build.sh) stay.
#   kube-down.sh [--keep-state]   --keep-state: stop the processes, keep etcd data and credentials
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/kube-lib.sh"
keep=${1:-}

[[ -d $KUBE_STATE ]] || { log "no cluster state at $KUBE_STATE: nothing to do"; exit 0; }
exec 9>"$KUBE_LOCK"
flock 9
S=$KUBE_STATE

# The kubelet first, so it does not restart what is removed next.
stop_component kubelet 10
if component_pid dockerd >/dev/null; then
  ids=$(kdocker ps -aq 2>/dev/null || true)
  [[ -n "$ids" ]] && kdocker rm -f $ids >/dev/null 2>&1 || true
fi
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_component "$c" 10; done
stop_component dockerd 20

# containerd and its shims are children of the cluster's dockerd: those still running with the
# state directory on their command line were started by this cluster.
for p in /proc/[0-9]*; do
  case "$(cat "$p/comm" 2>/dev/null)" in
    containerd | containerd-shim* | dockerd | runc | etcd | kube*) ;;
    *) continue ;;
  esac
  tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$S/" && kill -KILL "${p#/proc/}" 2>/dev/null || true
done

# Mounts the kubelet (secret volumes) and the engine (overlays, netns) left under the state dir.
findmnt -rn -o TARGET | { grep -F "$S/" || true; } | sort -r | while read -r m; do umount -n -l "$m" 2>/dev/null || true; done

if [[ -f $S/host/sysctl.saved ]]; then
  while IFS== read -r k v; do sysctl -qw "$k=$v" 2>/dev/null || true; done <"$S/host/sysctl.saved"
fi
if [[ -f $S/host/oom-score-adj ]]; then
  while read -r p adj sum; do
    [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cksum | cut -d' ' -f1)" == "$sum" ]] &&
      echo "$adj" >"/proc/$p/oom_score_adj" 2>/dev/null || true
  done <"$S/host/oom-score-adj"
fi
if [[ -f $S/host/created-dirs ]]; then
  while read -r d; do [[ -n "$d" ]] && rm -rf "$d"; done <"$S/host/created-dirs"
fi
# Cgroups the cluster engine's containers ran in.
for cg in /sys/fs/cgroup/*/entry-kube /sys/fs/cgroup/entry-kube; do
  [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

if [[ "$keep" == "--keep-state" ]]; then
  log "cluster stopped; state kept in $S"
else
  rm -rf "$S"
  rmdir "$(dirname "$S")" 2>/dev/null || true
  log "cluster stopped and its state removed"
fi
