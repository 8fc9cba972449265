#!/usr/bin/env bash
# A single-node Kubernetes cluster that runs real pods, on this machine alone: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (Debian's, with runc), the kubelet and kube-proxy. The
# Kubernetes components are built from source and cached by hack/control-plane.sh; containerd, runc, the CNI plugins,
# iptables and conntrack are installed with apt-get when missing. No registry is used: the sandbox ("pause") image is
# built here without Docker and imported, and `load` imports the operator's image (`make image`).
#
#   hack/node.sh up            start it (make node-up); waits for a Ready node and writes $NODE_DIR/kubeconfig (admin)
#                              and $NODE_DIR/env (KUBECONFIG, NODE_IP, PATH); does nothing when it is already up
#   hack/node.sh down          stop it and undo every host change up made (make node-down); does nothing when down
#   hack/node.sh load ARCHIVE  import an OCI archive (hack/image.sh) into the node's containerd under the name it
#                              carries, as the kubelet resolves it (stripe-operator:dev is docker.io/library/...)
#   hack/node.sh tag SRC DST   give an imported image a second name
#   hack/node.sh check         exit 0 when the machine can run the node (root, cgroups, overlayfs, network admin)
#
# Everything listens on the node's address, NODE_IP (10.244.0.1), the gateway of the pods' bridge (stripenode0,
# 10.244.0.0/24, created here): nothing is bound to another interface, and a FORWARD rule drops what pods send
# anywhere but that bridge. Services are 10.96.0.0/24; the API server is https://10.244.0.1:6443.
#
# Host changes, recorded by `up` in $NODE_DIR/host and undone by `down`: the sysctls the kubelet, kube-proxy and the
# bridge plugin set (restored to the recorded values), the bridge, the KUBE-*, CNI-* and STRIPE-NODE iptables chains
# (kube-proxy --cleanup, then what is left), the kubepods cgroups, the sandboxes' network namespaces, mounts under the
# node's directories, and the directories the components create outside $NODE_DIR when they did not exist before
# (/run/containerd, /run/netns, /var/lib/cni, /var/lib/kubelet, /var/log/containers, /var/log/pods, /run/mount), with
# what is mounted under them. `up` refuses to start where a kubelet already runs (kubepods cgroups exist).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

node_dir=${NODE_DIR:-$root/bin/node}
run_dir=/run/stripe-operator-node # sockets and runtime state; short, for the 108-byte socket path limit
node_ip=10.244.0.1
pod_cidr=10.244.0.0/24
service_cidr=10.96.0.0/24
bridge=stripenode0
node_name=stripe-operator-node
pause_image=registry.local/stripe-operator/pause:1
sock=$run_dir/containerd.sock
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.ipv4.conf.default.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv6.conf.all.forwarding)
host_paths=(/run/containerd /run/netns /var/lib/cni /var/lib/kubelet /var/log/containers /var/log/pods /run/mount
  /run/nri /etc/cni /opt/cni)
# The components in start order; down stops them in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

log() { echo "node: $*" >&2; }
die() { log "$*"; exit 1; }

check() {
  [ "$(id -u)" = 0 ] || { echo "the node needs root (containers, iptables, cgroups)"; return 1; }
  if ! command -v apt-get >/dev/null; then
    local b
    for b in containerd runc iptables /usr/lib/cni/bridge; do
      command -v "$b" >/dev/null || { echo "no $b and no apt-get to install it"; return 1; }
    done
  fi
  [ -d /sys/fs/cgroup ] || { echo "no cgroup file system at /sys/fs/cgroup"; return 1; }
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || { echo "no overlay file system"; return 1; }
  ip link add stripenodetest type bridge 2>/dev/null || { echo "cannot create a network bridge"; return 1; }
  ip link del stripenodetest
}

# packages installs what the node needs from Debian when it is missing.
packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  [ ${#need[@]} = 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
  log "installing ${need[*]} with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

pidfile() { echo "$node_dir/pids/$1"; }
running() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# spawn starts a component in its own session, logging to $node_dir/logs/NAME.log.
spawn() {
  local name=$1
  shift
  setsid "$@" >"$node_dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# wait_for runs its command until it succeeds, for at most $1 seconds, failing early when component $2 has exited.
wait_for() {
  local secs=$1 name=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$name" ] && ! running "$name"; then
      log "$name exited; the end of $node_dir/logs/$name.log:"
      tail -20 "$node_dir/logs/$name.log" >&2
      return 1
    fi
    [ $SECONDS -lt $end ] || { log "timed out waiting for: $*"; return 1; }
    sleep 0.2
  done
}

# pki writes a CA and the certificates of every component (EC P-256, a year), once.
pki() {
  local d=$node_dir/pki
  [ -f "$d/done" ] && return 0
  mkdir -p "$d"
  (
    cd "$d"
    umask 077
    key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
    key ca
    openssl req -x509 -new -key ca.key -subj "/CN=stripe-operator-node-ca" -days 365 -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    cert() { # cert NAME SUBJECT USAGE [SANS]
      key "$1"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      { echo "keyUsage=critical,digitalSignature,keyEncipherment"; echo "extendedKeyUsage=$3"
        [ -n "${4:-}" ] && echo "subjectAltName=$4"; } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile "$1.ext" \
        -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver "/CN=kube-apiserver" serverAuth "IP:${service_cidr%.0/*}.1,IP:$node_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    cert admin "/O=system:masters/CN=stripe-operator-node-admin" clientAuth
    cert controller-manager "/CN=system:kube-controller-manager" clientAuth
    cert scheduler "/CN=system:kube-scheduler" clientAuth
    cert proxy "/CN=system:kube-proxy" clientAuth
    cert kubelet "/O=system:nodes/CN=system:node:$node_name" clientAuth
    cert kubelet-serving "/CN=$node_name" serverAuth "IP:$node_ip,DNS:$node_name"
    key sa
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ca.srl
    touch done
  )
}

kubeconfig() { # kubeconfig NAME: a kubeconfig with the client certificate NAME
  local d=$node_dir/pki
  cat >"$node_dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: node
  cluster: {server: "https://$node_ip:6443", certificate-authority: "$d/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$d/$1.crt", client-key: "$d/$1.key"}
contexts:
- name: node
  context: {cluster: node, user: $1}
current-context: node
EOF
  chmod 600 "$node_dir/$1.kubeconfig"
}

# configs writes the configuration files of containerd, the CNI plugins, the kubelet and kube-proxy.
configs() {
  local d=$node_dir
  mkdir -p "$d/cni" "$d/containerd"
  cat >"$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$run_dir/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$run_dir/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # These machines deny CAP_SYS_RESOURCE to every process, so runc cannot lower oom_score_adj for a container and
  # every sandbox fails ("can't get final child's PID from pipe: EOF"); this keeps the score at the parent's.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$run_dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
EOF
  cat >"$d/cni/10-stripenode.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "stripenode",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$d/cni-ipam", "ranges": [[{"subnet": "$pod_cidr", "gateway": "$node_ip"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
healthzBindAddress: $node_ip
readOnlyPort: 0
tlsCertFile: $d/pki/kubelet-serving.crt
tlsPrivateKeyFile: $d/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/pki/ca.crt}
authorization: {mode: Webhook}
# cgroup v1 here: the kubelet 1.37 refuses it unless told, with a deprecation warning.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$sock
podLogsDir: $d/pod-logs
evictionHard: {nodefs.available: "1%", imagefs.available: "1%", memory.available: 100Mi}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
  cat >"$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $d/proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node_name
bindAddress: $node_ip
healthzBindAddress: $node_ip:10256
metricsBindAddress: $node_ip:10249
nodePortAddresses: ["$node_ip/32"]
iptables: {localhostNodePorts: false}
# Zeros leave the conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# record writes what `down` restores: the sysctls and which host paths existed.
record() {
  local h=$node_dir/host s p
  [ -f "$h/recorded" ] && return 0 # a failed up left it: the values before that up are the ones to restore
  mkdir -p "$h"
  : >"$h/sysctls"
  for s in "${sysctls[@]}"; do
    if v=$(sysctl -n "$s" 2>/dev/null); then printf '%s=%s\n' "$s" "$v" >>"$h/sysctls"; fi
  done
  : >"$h/paths"
  for p in "${host_paths[@]}"; do [ -e "$p" ] && echo "$p" >>"$h/paths"; done
  : >"$h/netns"
  for p in /run/netns/cni-*; do [ -e "$p" ] && echo "$p" >>"$h/netns"; done
  touch "$h/recorded"
}

network() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
  fi
  ip addr replace "$node_ip/${pod_cidr#*/}" dev "$bridge"
  ip link set "$bridge" up
  # Pods talk to the node and to each other on the bridge, nothing else: no route off the machine.
  iptables -N STRIPE-NODE-FORWARD 2>/dev/null || iptables -F STRIPE-NODE-FORWARD
  iptables -A STRIPE-NODE-FORWARD -i "$bridge" ! -o "$bridge" -j DROP
  iptables -C FORWARD -j STRIPE-NODE-FORWARD 2>/dev/null || iptables -I FORWARD -j STRIPE-NODE-FORWARD
}

up() {
  if running kubelet && [ -f "$node_dir/ready" ]; then
    log "already up; source $node_dir/env"
    return 0
  fi
  local msg
  msg=$(check) || die "this machine cannot run the node: $msg"
  # One node per machine: the bridge, the address and $run_dir are fixed.
  other_node
  down_quiet
  if compgen -G '/sys/fs/cgroup/*/kubepods' >/dev/null || [ -d /sys/fs/cgroup/kubepods ]; then
    die "a kubelet already runs on this machine (kubepods cgroups exist); the node would share them"
  fi
  packages
  local bin
  bin=$("$root/hack/control-plane.sh" node)
  local k="$bin/kubectl --kubeconfig $node_dir/admin.kubeconfig"
  mkdir -p "$node_dir/pids" "$node_dir/logs" "$run_dir"
  echo "$node_dir" >"$run_dir/owner"
  # A failed start leaves nothing behind, unless NODE_KEEP=1 keeps it to look at.
  [ "${NODE_KEEP:-}" = 1 ] || trap 'log "start failed; stopping"; down_quiet' EXIT
  local start=$SECONDS
  pki
  for c in admin controller-manager scheduler proxy kubelet; do kubeconfig "$c"; done
  configs
  pause_archive
  record
  network

  local p=$node_dir/pki
  spawn etcd "$bin/etcd" --name node --data-dir "$node_dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://$node_ip:2379" --advertise-client-urls "http://$node_ip:2379" \
    --listen-peer-urls "http://$node_ip:2380" --initial-advertise-peer-urls "http://$node_ip:2380" \
    --initial-cluster "node=http://$node_ip:2380" --listen-metrics-urls "" --log-level warn
  spawn kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://$node_ip:2379" \
    --bind-address "$node_ip" --advertise-address "$node_ip" --secure-port 6443 \
    --service-cluster-ip-range "$service_cidr" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --client-ca-file "$p/ca.crt" \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$p/apiserver-kubelet-client.key" --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --cert-dir "$node_dir/apiserver-certs"
  wait_for 60 kube-apiserver $k get --raw /readyz || die "the API server did not become ready"
  log "API server ready after $((SECONDS - start))s"
  spawn kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$node_dir/controller-manager.kubeconfig" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" --use-service-account-credentials \
    --leader-elect=false --bind-address "$node_ip" --cluster-name stripe-operator-node
  spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig "$node_dir/scheduler.kubeconfig" --leader-elect=false \
    --bind-address "$node_ip"
  spawn containerd containerd --config "$node_dir/containerd/config.toml"
  wait_for 30 containerd ctr --address "$sock" version || die "containerd did not start"
  import "$node_dir/pause.oci.tar"
  spawn kubelet "$bin/kubelet" --config "$node_dir/kubelet.yaml" --kubeconfig "$node_dir/kubelet.kubeconfig" \
    --root-dir "$node_dir/kubelet" --hostname-override "$node_name" --node-ip "$node_ip"
  spawn kube-proxy "$bin/kube-proxy" --config "$node_dir/kube-proxy.yaml"
  node_ready() { [ "$($k get node "$node_name" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
  wait_for 120 kubelet node_ready || die "the node did not become Ready; see $node_dir/logs/kubelet.log"
  log "node Ready after $((SECONDS - start))s"
  # Pods of a new namespace need its default ServiceAccount, and the API server's CA in it.
  wait_for 60 kube-controller-manager $k -n default get serviceaccount default || die "no default ServiceAccount"
  wait_for 60 kube-controller-manager $k -n default get configmap kube-root-ca.crt || die "no kube-root-ca.crt"
  cp "$node_dir/admin.kubeconfig" "$node_dir/kubeconfig"
  cat >"$node_dir/env" <<ENV
export KUBECONFIG=$node_dir/kubeconfig
export NODE_IP=$node_ip
export PATH=$bin:\$PATH
ENV
  touch "$node_dir/ready"
  trap - EXIT
  log "up in $((SECONDS - start))s; source $node_dir/env"
}

# pause_archive builds the sandbox image once.
pause_archive() {
  [ -f "$node_dir/pause.oci.tar" ] && return 0
  local tools=$root/hack/tools/image
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$node_dir/pause" ./pause)
  (cd "$tools" && go run . -pause -binary "$node_dir/pause" -o "$node_dir/pause.oci.tar" -ref "$pause_image")
}

# import loads an OCI archive whose index names the image (org.opencontainers.image.ref.name) into the k8s.io
# namespace, under the name the kubelet asks for: "stripe-operator:dev" is docker.io/library/stripe-operator:dev.
import() {
  local archive=$1 ref name
  ref=$(tar -xOf "$archive" index.json | tr -d ' \n' | sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p')
  [ -n "$ref" ] || die "$archive names no image"
  name=$(normalize "$ref")
  ctr --address "$sock" -n k8s.io images import "$archive" >&2
  if [ "$ref" != "$name" ]; then # ctr keeps the name as written; the kubelet asks for the normalized one
    ctr --address "$sock" -n k8s.io images tag --force "$ref" "$name" >/dev/null
    ctr --address "$sock" -n k8s.io images rm "$ref" >/dev/null
  fi
  ctr --address "$sock" -n k8s.io images ls -q | grep -xF "$name" >/dev/null || die "importing $archive did not give $name"
  log "imported $name"
}

normalize() {
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then ref=docker.io/library/$ref
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then ref=docker.io/$ref
  fi
  echo "$ref"
}

# stop ends component $1 by its recorded PID: TERM, then KILL after 15 s.
stop() {
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# shims lists the PIDs of containerd shims (and their containers' runc) started for this node's containerd: they
# outlive containerd by design.
shims() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -F -- "-address $sock" >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

# delete_workloads removes every pod while the kubelet runs, so each sandbox gets its CNI DEL.
delete_workloads() {
  local bin=$1 k="$1/kubectl --kubeconfig $node_dir/admin.kubeconfig --request-timeout 10s"
  running kube-apiserver && running kubelet || return 0
  $k get --raw /readyz >/dev/null 2>&1 || return 0
  # Nothing recreates them once the controllers and the scheduler are gone.
  stop kube-scheduler
  stop kube-controller-manager
  $k delete pods --all --all-namespaces --grace-period 5 --wait=false >/dev/null 2>&1 || true
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do
    [ -z "$($k get pods -A -o name 2>/dev/null)" ] && break
    sleep 0.5
  done
  # A sandbox's network goes (CNI DEL, its netns removed) when the kubelet stops it, about when its pod object goes;
  # wait for no task to run and no sandbox network namespace to be left.
  end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ] && running containerd; do
    if ! ctr --address "$sock" -n k8s.io tasks ls 2>/dev/null | grep RUNNING >/dev/null && ! compgen -G '/run/netns/cni-*' >/dev/null; then
      break
    fi
    sleep 0.5
  done
}

# iptables_cleanup removes the KUBE-*, CNI-* and STRIPE-NODE-* chains and the rules that jump to them.
iptables_cleanup() {
  local ipt table chain rule
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle raw; do
      "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
      # Rules in any chain that jump to one of ours, then our chains.
      "$ipt" -t "$table" -S | { grep -E '^-A .* -j (KUBE-|CNI-|STRIPE-NODE-)' || true; } |
        { grep -vE '^-A (KUBE-|CNI-|STRIPE-NODE-)' || true; } | while read -r rule; do
          eval "\"$ipt\" -t $table -D ${rule#-A }" 2>/dev/null || true
        done
      for chain in $("$ipt" -t "$table" -S | sed -n 's/^-N \(\(KUBE-\|CNI-\|STRIPE-NODE-\)[^ ]*\)$/\1/p'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S | sed -n 's/^-N \(\(KUBE-\|CNI-\|STRIPE-NODE-\)[^ ]*\)$/\1/p'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# unmount_under unmounts every mount point under the directory $1, deepest first.
unmount_under() {
  local m
  awk -v d="$1/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

down_quiet() { down >/dev/null 2>&1 || true; }

# other_node fails when a node of another NODE_DIR is up: the bridge, the address and $run_dir are the machine's.
other_node() {
  local owner
  owner=$(cat "$run_dir/owner" 2>/dev/null) || return 0
  if [ "$owner" != "$node_dir" ] && [ -d "$owner" ]; then
    die "another node is up, with NODE_DIR=$owner; stop it with: NODE_DIR=$owner $0 down"
  fi
}

down() {
  local bin="" i c
  bin=$("$root/hack/control-plane.sh" 2>/dev/null) || true
  [ -d "$node_dir" ] || return 0
  other_node
  rm -f "$node_dir/ready" "$node_dir/env" "$node_dir/kubeconfig"
  [ -n "$bin" ] && delete_workloads "$bin"
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    c=${components[i]}
    stop "$c"
    if [ "$c" = kube-proxy ] && [ -n "$bin" ] && [ -x "$bin/kube-proxy" ] && command -v iptables >/dev/null; then
      "$bin/kube-proxy" --cleanup --config "$node_dir/kube-proxy.yaml" >"$node_dir/logs/kube-proxy-cleanup.log" 2>&1 || true
    fi
    if [ "$c" = containerd ]; then
      # Containers left by a kubelet that could not stop them, then the shims.
      local id pid
      if [ -d "$run_dir/runc/k8s.io" ]; then
        for id in $(runc --root "$run_dir/runc/k8s.io" list -q 2>/dev/null); do
          runc --root "$run_dir/runc/k8s.io" kill "$id" KILL 2>/dev/null || true
          runc --root "$run_dir/runc/k8s.io" delete -f "$id" 2>/dev/null || true
        done
      fi
      for pid in $(shims); do kill -KILL "$pid" 2>/dev/null || true; done
    fi
  done
  # Network namespaces of sandboxes that got no CNI DEL (those that were there before up are not ours).
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    grep -qxF "$ns" "$node_dir/host/netns" 2>/dev/null && continue
    ip netns delete "${ns##*/}" 2>/dev/null || { umount "$ns" 2>/dev/null; rm -f "$ns"; } || true
  done
  unmount_under "$node_dir"
  unmount_under "$run_dir"
  iptables_cleanup
  ip link del "$bridge" 2>/dev/null || true
  # The kubepods cgroups, deepest first, in every hierarchy.
  local h
  for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  local hs=$node_dir/host
  if [ -f "$hs/recorded" ]; then
    local line p
    while IFS= read -r line; do
      sysctl -q -w "$line" >/dev/null 2>&1 || log "could not restore $line"
    done <"$hs/sysctls"
    for p in "${host_paths[@]}"; do
      grep -qxF "$p" "$hs/paths" || { [ -e "$p" ] && unmount_under "$p" && rm -rf "$p"; } || true
    done
    rm -rf "$hs"
  fi
  rm -rf "$run_dir" "$node_dir/pids" "$node_dir/etcd" "$node_dir/kubelet" "$node_dir/pod-logs" \
    "$node_dir/cni-ipam" "$node_dir/containerd/root" "$node_dir/apiserver-certs"
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  load) [ $# = 2 ] || die "usage: $0 load ARCHIVE"; running containerd || die "the node is not up"; import "$2" ;;
  tag)
    [ $# = 3 ] || die "usage: $0 tag SRC DST"
    ctr --address "$sock" -n k8s.io images tag --force "$(normalize "$2")" "$(normalize "$3")" >&2
    ;;
  *) echo "usage: $0 up|down|load ARCHIVE|tag SRC DST|check" >&2; exit 2 ;;
esac
