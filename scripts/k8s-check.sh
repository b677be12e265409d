#!/usr/bin/env bash
# Server-side chart checks (`make k8s-check`; optional, not part of CI): the chart installed with
# `helm install --dry-run=server` against a real kube-apiserver and etcd, so admission, the real
# OpenAPI schemas and the real CRDs judge the manifests, not a schema copy.
#
# - etcd and kube-apiserver are built from the Go module proxy (wrapper modules in
#   tools/k8s-check/; about 5 minutes on 2 cores the first time, cached in $K8S_TOOLS afterwards)
#   and started on free loopback ports with a throwaway data directory, stopped on exit.
# - The real KEDA and Prometheus Operator CRDs (ScaledObject, ServiceMonitor, PrometheusRule) come
#   from those projects' modules on the proxy, so the chart's custom resources are validated by
#   their published schemas.
# - The chart goes into a namespace enforcing the `restricted` Pod Security profile. Pod Security
#   enforces on Pods, not on a Deployment's template, so besides the chart's dry run (which must
#   pass without a single warning) the Deployment's pod template is created as a Pod with
#   dryRun=All and must be admitted; a template with an unconfined seccomp profile must be
#   refused, which proves the namespace really enforces.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/go-tools.sh
source scripts/go-tools.sh
KUBE_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KEDA_MODULE=github.com/kedacore/keda/v2@v2.17.2
PROMETHEUS_OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator@v0.85.0
K8S_TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/tracking-consumer/k8s-check
CHART=helm/tracking-consumer
ALL_ON=helm/ci/values-all-on.yaml
NAMESPACE=tracking
KUBE_MINOR=1.34.0
OPSUTIL=helm/ci/opsutil.py
PYTHON=${PYTHON:-.venv/bin/python}

step() { printf '\n== %s\n' "$*"; }

build() {  # name wrapper-dir package [ldflags] -> prints the binary's path
    local name=$1 dir=$2 package=$3 ldflags=${4:-} out
    out="$K8S_TOOLS/$name-$(sha256sum "$dir/go.mod" | cut -c1-12)/$name"
    if [[ ! -x "$out" ]]; then
        echo "building $name from the Go module proxy (once)" >&2
        (cd "$dir" && "$GO" build -o "$out" -ldflags "$ldflags" "$package") >&2
    fi
    echo "$out"
}

module_dir() {  # module@version -> its directory in the module cache (downloaded if needed)
    "$GO" mod download -json "$1" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # what seconds command... : poll until the command succeeds
    local what=$1 seconds=$2
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "FAIL: timed out after ${seconds}s waiting for $what" >&2
    return 1
}

step "tools"
HELM=$(install_helm)
ETCD=$(build etcd tools/k8s-check/etcd go.etcd.io/etcd/server/v3)
VERSION_FLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
VERSION_FLAGS+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
APISERVER=$(build kube-apiserver tools/k8s-check/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
    "$VERSION_FLAGS")
KEDA_CRDS=$(module_dir "$KEDA_MODULE")/config/crd/bases
OPERATOR_CRDS=$(module_dir "$PROMETHEUS_OPERATOR_MODULE")/example/prometheus-operator-crd
"$ETCD" --version | head -1
"$APISERVER" --version

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

step "etcd and kube-apiserver on loopback"
ETCD_PORT=$(free_port)
ETCD_PEER_PORT=$(free_port)
"$ETCD" --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_for etcd 30 curl -fs "http://127.0.0.1:$ETCD_PORT/health"

openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null
TOKEN=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
echo "$TOKEN,k8s-check,k8s-check,system:masters" >"$WORK/tokens.csv"
API_PORT=$(free_port)
"$APISERVER" --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 --secure-port "$API_PORT" --cert-dir "$WORK/certs" \
    --service-account-key-file "$WORK/sa.pub" --service-account-signing-key-file "$WORK/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --token-auth-file "$WORK/tokens.csv" --authorization-mode RBAC \
    --service-cluster-ip-range 10.96.0.0/24 >"$WORK/apiserver.log" 2>&1 &
PIDS+=($!)
wait_for "kube-apiserver /readyz" 120 \
    curl -fsk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" || {
    tail -20 "$WORK/apiserver.log" >&2
    exit 1
}
export KUBECONFIG=$WORK/kubeconfig
cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}}]
users: [{name: k8s-check, user: {token: "$TOKEN"}}]
contexts: [{name: local, context: {cluster: local, user: k8s-check}}]
current-context: local
EOF
echo "kube-apiserver ready on 127.0.0.1:$API_PORT"

step "the real CRDs and a namespace enforcing the restricted Pod Security profile"
# A throwaway chart installs them for real: Helm applies crds/ first and waits until every CRD is
# established, so the dry runs below see the custom kinds.
mkdir -p "$WORK/setup/crds" "$WORK/setup/templates"
cp "$KEDA_CRDS/keda.sh_scaledobjects.yaml" "$OPERATOR_CRDS/monitoring.coreos.com_servicemonitors.yaml" \
    "$OPERATOR_CRDS/monitoring.coreos.com_prometheusrules.yaml" "$WORK/setup/crds/"
printf 'apiVersion: v2\nname: k8s-check-setup\nversion: 0.0.0\n' >"$WORK/setup/Chart.yaml"
cat >"$WORK/setup/templates/namespace.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
---
# The class the all-on values name: the priority admission refuses a Pod naming a missing one.
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: $("$PYTHON" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["priorityClassName"])' "$ALL_ON")
value: 1000
---
# What the controller manager (not run here) would create in every namespace; the Pod below uses it.
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: $NAMESPACE
EOF
"$HELM" install k8s-check-setup "$WORK/setup" --namespace default --wait >/dev/null
echo "installed: ScaledObject, ServiceMonitor, PrometheusRule CRDs; namespace $NAMESPACE (restricted);"
echo "the all-on values' PriorityClass; the namespace's default ServiceAccount"

dry_run() {  # name helm-args... : install --dry-run=server; manifests in $WORK/<name>.out,
    local name=$1  # errors and the API server's warnings in $WORK/<name>.err
    shift
    "$HELM" install tc "$CHART" --namespace "$NAMESPACE" --dry-run=server "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err"
}

admit_pod() {  # name helm-args... -> HTTP status of a dry-run create of the chart's pod as a Pod
    local name=$1
    shift
    "$HELM" template tc "$CHART" --namespace "$NAMESPACE" --kube-version "$KUBE_MINOR" "$@" \
        | "$PYTHON" "$OPSUTIL" pod-from-deployment >"$WORK/$name.pod.json"
    curl -sk -o "$WORK/$name.pod.answer" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data "@$WORK/$name.pod.json" \
        "https://127.0.0.1:$API_PORT/api/v1/namespaces/$NAMESPACE/pods?dryRun=All"
}

step "helm install --dry-run=server, and the pod admitted by the restricted namespace"
for variant in default all-on all-on-hpa; do
    case $variant in
        default) args=() ;;
        all-on) args=(-f "$ALL_ON") ;;
        all-on-hpa) args=(-f "$ALL_ON" --set autoscaling.keda.enabled=false --set autoscaling.hpa.enabled=true) ;;
    esac
    if ! dry_run "$variant" "${args[@]}"; then
        echo "FAIL: the API server refused the chart ($variant):" >&2
        cat "$WORK/$variant.err" >&2
        exit 1
    fi
    if [[ -s "$WORK/$variant.err" ]]; then
        echo "FAIL: the API server warned about the chart ($variant):" >&2
        cat "$WORK/$variant.err" >&2
        exit 1
    fi
    status=$(admit_pod "$variant" "${args[@]}")
    if [[ "$status" != 201 ]]; then
        echo "FAIL: the restricted namespace refused the chart's pod ($variant): HTTP $status" >&2
        cat "$WORK/$variant.pod.answer" >&2
        exit 1
    fi
    echo "$variant: accepted, no warning ($(grep -c '^kind:' "$WORK/$variant.out") objects); pod admitted"
done

step "the restricted profile is enforced"
status=$(admit_pod unconfined -f "$ALL_ON" --set podSecurityContext.seccompProfile.type=Unconfined)
if [[ "$status" != 403 ]] || ! grep -q 'violates PodSecurity \\"restricted' "$WORK/unconfined.pod.answer"; then
    echo "FAIL: a pod with an unconfined seccomp profile was not refused (HTTP $status):" >&2
    cat "$WORK/unconfined.pod.answer" >&2
    exit 1
fi
echo "refused as expected (HTTP 403): $(grep -o 'violates PodSecurity[^,]*' "$WORK/unconfined.pod.answer" \
    | head -1 | sed 's/\\"/"/g; s/"$//')"

step "k8s checks passed"
