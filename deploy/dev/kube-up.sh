#!/usr/bin/env bash
# Starts a one-node Kubernetes 1.20 cluster on this machine, everything on loopback, from Debian
# packages only (binaries from kube-build.sh, etcd from etcd-server, Docker from docker.io).
# Idempotent: components already running are kept, missing ones are started, and it returns
# once the node is Ready and pods can be created. kube-down.sh stops it and puts the host back.
#
# State (root-only, never committed), default /var/lib/entry/kube (ENTRY_KUBE_STATE):
#   kubeconfig      admin kubeconfig (static token of user entry-admin, group system:masters)
#   admin.token     the same token alone;  pki/ca.crt  the CA the apiserver's certificate is from
#   cluster.json    {apiserverUrl, kubeconfig, adminTokenFile, caFile, dockerHost, ...} for tests
#   log/*.log       one log per component;  run/*.pid, run/docker.sock
#   tmp/            the components' TMPDIR (a test run's own goes when that run ends)
#
# Pods run on a dockerd of the cluster's own (own socket, data and exec root, own network
# namespace), never on the machine's engine; pod IPs are on that engine's bridge, inside its
# namespace, so the host does not reach them (exec, logs and attach go through the kubelet).
# Images cannot be pulled here: the offline demo images (entry-demo:latest, :nobash, :nosh) are
# loaded; use imagePullPolicy: IfNotPresent or Never. Test runs share the cluster through
# kube-lease.sh (test/helpers/kube-cluster.ts does that).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/kube-lib.sh"

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

ensure_packages busybox-static etcd-server jq curl openssl iproute2 util-linux
ensure_docker_binaries
bin=$(bash "$here/kube-build.sh")

as_root mkdir -p "$(dirname "$KUBE_STATE")"
exec 9>"$KUBE_LOCK"
flock 9
mkdir -p "$KUBE_STATE"/{pki,run,log,host}
chmod 0700 "$KUBE_STATE"
S=$KUBE_STATE

# --- Credentials: made once per state directory (kube-down.sh removes them) -------------------
if [[ ! -f $S/pki/ca.crt ]]; then
  log "creating the cluster's CA, certificates, service-account key and static tokens"
  (
    cd "$S/pki"
    umask 077
    # P-256 keys: made in milliseconds, where RSA took seconds on two busy cores.
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
    openssl req -x509 "${ec[@]}" -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj /CN=entry-kube-ca -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    issue() { # name subject extensions
      openssl req "${ec[@]}" -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -out "$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
      rm -f "$1.csr"
    }
    issue apiserver /CN=kube-apiserver "$(printf '%s\n%s' \
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1' \
      'extendedKeyUsage=serverAuth')"
    # The apiserver's identity towards the kubelet, which trusts only certificates from this CA.
    issue apiserver-kubelet-client '/O=system:masters/CN=kube-apiserver-kubelet-client' 'extendedKeyUsage=clientAuth'
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  tok() { openssl rand -hex 24; }
  admin=$(tok) kubelet=$(tok) scheduler=$(tok) cm=$(tok)
  (
    umask 077
    printf '%s\n' \
      "$admin,entry-admin,entry-admin,\"system:masters\"" \
      "$kubelet,system:node:localhost,kubelet,\"system:nodes\"" \
      "$scheduler,system:kube-scheduler,kube-scheduler" \
      "$cm,system:kube-controller-manager,kube-controller-manager" >"$S/tokens.csv"
    printf '%s' "$admin" >"$S/admin.token"
    ca=$(base64 -w0 <"$S/pki/ca.crt")
    kubeconfig() { # file user token
      cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: entry-kube
  cluster:
    server: $KUBE_API
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@entry-kube
  context:
    cluster: entry-kube
    user: $2
current-context: $2@entry-kube
KC
    }
    kubeconfig "$S/kubeconfig" entry-admin "$admin"
    kubeconfig "$S/kubelet.kubeconfig" kubelet "$kubelet"
    kubeconfig "$S/scheduler.kubeconfig" kube-scheduler "$scheduler"
    kubeconfig "$S/controller-manager.kubeconfig" kube-controller-manager "$cm"
  )
fi

# --- The cluster's own Docker engine ---------------------------------------------------------
# Root here lacks CAP_SYS_RESOURCE, so runc fails on the negative oom_score_adj that kubelet asks
# for (pause container, Guaranteed pods). This runtime drops negative values, then runs runc.
mkdir -p "$S/bin"
cat >"$S/bin/runc-no-oom-adj" <<RUNC
#!/bin/sh
strip() {
  [ -f "\$1" ] || return 0
  if $(command -v jq) -e '((.process // .).oomScoreAdj // 0) < 0' "\$1" >/dev/null 2>&1; then
    $(command -v jq) -c 'if .process then del(.process.oomScoreAdj) else del(.oomScoreAdj) end' "\$1" >"\$1.tmp" && mv "\$1.tmp" "\$1"
  fi
}
prev=
for a in "\$@"; do
  case "\$prev" in --bundle|-b) strip "\$a/config.json" ;; --process|-p) strip "\$a" ;; esac
  case "\$a" in --bundle=*) strip "\${a#--bundle=}/config.json" ;; --process=*) strip "\${a#--process=}" ;; esac
  prev=\$a
done
exec $(command -v runc) "\$@"
RUNC
chmod 0755 "$S/bin/runc-no-oom-adj"

if ! component_pid dockerd >/dev/null; then
  # Its own network namespace: the engine never sees the host's interfaces (a dockerd with
  # --bridge=none deletes the host's docker0), and its socket is a file the host still reaches.
  # Its default bridge lives in that namespace: the kubelet re-creates, every second or so, a
  # pod sandbox that has no IP, so pods need one even though nothing outside can reach them.
  start_component dockerd unshare --net -- sh -c 'ip link set lo up; exec dockerd "$@"' dockerd \
    --host "unix://$KUBE_SOCK" --data-root "$S/docker" --exec-root "$S/run/docker-exec" \
    --pidfile "$S/run/dockerd.pid.own" --containerd-namespace entry-kube \
    --containerd-plugins-namespace entry-kube-plugins \
    --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/entry-kube --oom-score-adjust=0 \
    --add-runtime "entry-runc=$S/bin/runc-no-oom-adj" --default-runtime entry-runc
fi
if ! component_pid etcd >/dev/null; then
  start_component etcd etcd --name entry-kube --data-dir "$S/etcd" --logger zap \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "entry-kube=http://$ETCD_PEER"
fi
wait_for "etcd" 60 etcd curl -sf "http://$ETCD_CLIENT/health"

if ! component_pid kube-apiserver >/dev/null; then
  start_component kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_PORT" --insecure-port 0 --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none --service-cluster-ip-range 10.0.0.0/24 \
    --tls-cert-file "$S/pki/apiserver.crt" --tls-private-key-file "$S/pki/apiserver.key" \
    --client-ca-file "$S/pki/ca.crt" --token-auth-file "$S/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged \
    --service-account-key-file "$S/pki/sa.pub" --service-account-signing-key-file "$S/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --kubelet-preferred-address-types Hostname,InternalIP \
    --kubelet-client-certificate "$S/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$S/pki/apiserver-kubelet-client.key" \
    --cert-dir "$S/pki/apiserver-generated" --profiling=false
fi

# Images, while the apiserver starts: the pause image (a sleeper that exits on TERM), then the
# demo images, built offline as the rest of the project does.
wait_for "the cluster's dockerd" 60 dockerd kdocker version
if ! kdocker image inspect "$KUBE_PAUSE_IMAGE" >/dev/null 2>&1; then
  pause=$(mktemp -d)
  mkdir -p "$pause/bin"
  cp "$(command -v busybox)" "$pause/bin/busybox"
  ln -s busybox "$pause/bin/sh"
  ln -s busybox "$pause/bin/sleep"
  tar -C "$pause" -c . | kdocker import \
    -c 'ENTRYPOINT ["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' \
    - "$KUBE_PAUSE_IMAGE" >/dev/null
  rm -rf "$pause"
fi
# The kubelet starts while the apiserver does (it retries until it can register).
if ! component_pid kubelet >/dev/null; then
  # The kubelet tunes a few kernel settings at start and creates a few fixed paths whatever its
  # flags say (pod logs, device-plugin socket, mount's utab): record them once, so kube-down.sh
  # can put them back.
  if [[ ! -f $S/host/sysctl.saved ]]; then
    for k in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
        kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
      v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v"
    done >"$S/host/sysctl.saved"
    for d in /var/log/pods /var/log/containers /var/lib/kubelet /run/mount; do [[ -e $d ]] || echo "$d"; done >"$S/host/created-dirs"
    # The dockershim sets oom_score_adj -999 on every process named dockerd or containerd, the
    # machine's own included, where root may lower it.
    for p in $(pgrep -x 'dockerd|containerd' || true); do
      echo "$p $(cat 2>/dev/null "/proc/$p/oom_score_adj") $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cksum | cut -d' ' -f1)"
    done >"$S/host/oom-score-adj"
  fi
  mkdir -p "$S/kubelet"
  # Node status checked every second (a status is only sent when it changes, or every minute):
  # the node turns Ready a second after the kubelet finds the runtime up, not ten.
  cat >"$S/kubelet/config.yaml" <<'CFG'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 1m
CFG
  start_component kubelet "$bin/kubelet" --config "$S/kubelet/config.yaml" --kubeconfig "$S/kubelet.kubeconfig" \
    --container-runtime docker --docker-endpoint "unix://$KUBE_SOCK" \
    --container-runtime-endpoint "unix://$S/run/dockershim.sock" \
    --pod-infra-container-image "$KUBE_PAUSE_IMAGE" \
    --cgroup-driver cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
    --fail-swap-on=false --eviction-hard= --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
    --hostname-override localhost --address 127.0.0.1 --read-only-port 0 \
    --healthz-bind-address 127.0.0.1 --client-ca-file "$S/pki/ca.crt" --anonymous-auth=false \
    --authorization-mode AlwaysAllow --make-iptables-util-chains=false --oom-score-adj 0 \
    --root-dir "$S/kubelet" --cert-dir "$S/kubelet/pki" --volume-plugin-dir "$S/kubelet/volume-plugins" \
    --experimental-dockershim-root-directory "$S/dockershim" --serialize-image-pulls=false
fi

DOCKER_HOST="unix://$KUBE_SOCK" bash "$here/demo-image.sh" >/dev/null

wait_for "the apiserver" 90 kube-apiserver kube_api /readyz
t_api=$(elapsed)
log "apiserver ready at ${t_api}s"

if ! component_pid kube-controller-manager >/dev/null; then
  start_component kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$S/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --port 0 --leader-elect=false \
    --controllers '*,-nodeipam,-cloud-node-lifecycle' --use-service-account-credentials \
    --service-account-private-key-file "$S/pki/sa.key" --root-ca-file "$S/pki/ca.crt"
fi
if ! component_pid kube-scheduler >/dev/null; then
  start_component kube-scheduler "$bin/kube-scheduler" --kubeconfig "$S/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --port 0 --leader-elect=false
fi

wait_for "the controller-manager" 60 kube-controller-manager curl -skf https://127.0.0.1:10257/healthz
wait_for "the scheduler" 60 kube-scheduler curl -skf https://127.0.0.1:10259/healthz
# Ready, and without the not-ready taint it registers with (removed by the node-lifecycle
# controller): only then are pods scheduled.
node_ready() {
  kube_api /api/v1/nodes/localhost | jq -e '
    ([.status.conditions[] | select(.type == "Ready" and .status == "True")] | length == 1)
    and ([.spec.taints[]? | select(.key | startswith("node.kubernetes.io/"))] | length == 0)'
}
wait_for "node localhost to be Ready" 120 kubelet node_ready
t_node=$(elapsed)
# The ServiceAccount admission refuses pods until the namespace's default account has its token.
sa_ready() { kube_api /api/v1/namespaces/default/serviceaccounts/default | jq -e '.secrets | length > 0'; }
wait_for "the default service account's token" 60 kube-controller-manager sa_ready

jq -n --arg api "$KUBE_API" --arg s "$S" --arg sock "unix://$KUBE_SOCK" --arg bin "$bin" \
  --arg pause "$KUBE_PAUSE_IMAGE" '{
    apiserverUrl: $api, kubeconfig: "\($s)/kubeconfig", adminTokenFile: "\($s)/admin.token",
    caFile: "\($s)/pki/ca.crt", dockerHost: $sock, binDir: $bin, nodeName: "localhost",
    pauseImage: $pause, demoImages: ["entry-demo:latest", "entry-demo:nobash", "entry-demo:nosh"]
  }' >"$S/cluster.json"
log "cluster ready: apiserver ${t_api}s, node Ready ${t_node}s, total $(elapsed)s"
log "  export KUBECONFIG=$S/kubeconfig PATH=$bin:\$PATH"
