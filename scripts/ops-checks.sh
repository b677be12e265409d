#!/usr/bin/env bash
# Deployment and observability checks: the Helm chart, its Kubernetes manifests, the alert rules,
# the dashboard's PromQL and the dashboard itself against Grafana's schema. Called by .ci/run;
# safe to run again (tools are installed once).
#
# Tools, installed on first use and reused afterwards:
#   helm, kubeconform  `go install` of pinned versions into $OPS_TOOLS_DIR/<tool>-<version>/
#   dashboard-check    tools/dashboard-check (Go, grafana-foundation-sdk from the module proxy),
#                      built into $OPS_TOOLS_DIR; Go's build cache makes a rebuild instant
#   promtool           Debian's prometheus package (`apt-get install`, after an `apt-get update`)
#   Kubernetes schemas the kubernetes-validate wheel from PyPI, unpacked for kubeconform (which
#                      would otherwise download them from a host this machine cannot reach)
#
# CRD kinds (ServiceMonitor, PrometheusRule, ScaledObject) have no schema here and are skipped by
# kubeconform explicitly; the PrometheusRule's content is checked by promtool instead.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION=v0.8.0
KUBE_VERSION=1.33.0
K8S_SCHEMAS_PACKAGE=kubernetes-validate==1.37.0
CRD_KINDS=ServiceMonitor,PrometheusRule,ScaledObject

CHART=helm/tracking-consumer
ALL_ON=helm/ci/values-all-on.yaml
OPSUTIL=helm/ci/opsutil.py
PYTHON=${PYTHON:-.venv/bin/python}
# shellcheck source=scripts/go-tools.sh
source scripts/go-tools.sh

step() { printf '\n== %s\n' "$*"; }

install_promtool() {
    if ! command -v promtool >/dev/null; then
        echo "installing promtool (Debian package prometheus)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    fi
}

install_k8s_schemas() {  # -> prints the kubeconform schema location template
    local dir="$TOOLS/k8s-schemas-${K8S_SCHEMAS_PACKAGE#*==}"
    if [[ ! -f "$dir/v$KUBE_VERSION-local-strict/_definitions.json" ]]; then
        echo "unpacking Kubernetes $KUBE_VERSION schemas from $K8S_SCHEMAS_PACKAGE" >&2
        local wheels
        wheels=$(mktemp -d)
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$K8S_SCHEMAS_PACKAGE" >&2
        "$PYTHON" "$OPSUTIL" k8s-schemas "$wheels"/*.whl "$KUBE_VERSION" "$dir"
        rm -rf "$wheels"
    fi
    echo "$dir/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
}

step "tools"
HELM=$(install_helm)
KUBECONFORM=$(install_go_tool kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform)
install_promtool
SCHEMAS=$(install_k8s_schemas)
"$HELM" version --short
promtool --version | head -1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

render() {  # name helm-template-args... -> writes $WORK/<name>.yaml
    local name=$1
    shift
    "$HELM" template tc "$CHART" --namespace tracking --kube-version "$KUBE_VERSION" "$@" >"$WORK/$name.yaml"
}

validate() {  # name
    "$KUBECONFORM" -strict -summary -kubernetes-version "$KUBE_VERSION" \
        -schema-location "$SCHEMAS" -skip "$CRD_KINDS" "$WORK/$1.yaml"
}

expect_refusal() {  # what pattern helm-template-args...
    local what=$1 pattern=$2
    shift 2
    if "$HELM" template tc "$CHART" --kube-version "$KUBE_VERSION" "$@" >/dev/null 2>"$WORK/refusal"; then
        echo "FAIL: helm accepted $what" >&2
        exit 1
    fi
    if ! grep -q -- "$pattern" "$WORK/refusal"; then
        echo "FAIL: helm refused $what for another reason:" >&2
        cat "$WORK/refusal" >&2
        exit 1
    fi
    echo "refused as expected: $what"
}

step "helm lint"
"$HELM" lint --strict "$CHART" --kube-version "$KUBE_VERSION"
"$HELM" lint --strict "$CHART" --kube-version "$KUBE_VERSION" -f "$ALL_ON"

step "helm template | kubeconform (skipped CRD kinds: $CRD_KINDS)"
render default
render all-on -f "$ALL_ON"
render all-on-hpa -f "$ALL_ON" --set autoscaling.keda.enabled=false --set autoscaling.hpa.enabled=true
for name in default all-on all-on-hpa; do
    printf '%s: ' "$name"
    validate "$name"
done

step "helm refuses invalid values"
expect_refusal "KEDA and HPA both enabled" "autoscaling/hpa/enabled" \
    --set autoscaling.keda.enabled=true --set autoscaling.hpa.enabled=true
expect_refusal "KEDA maxReplicaCount above the partition count" "exceeds kafka.partitions" \
    --set autoscaling.keda.enabled=true --set kafka.partitions=4 --set autoscaling.keda.maxReplicaCount=5
expect_refusal "replicaCount above the partition count" "exceeds kafka.partitions" \
    --set kafka.partitions=2 --set replicaCount=3
expect_refusal "KEDA scaling to zero" "autoscaling/keda/minReplicaCount" \
    --set autoscaling.keda.enabled=true --set autoscaling.keda.minReplicaCount=0
expect_refusal "no Redo secret at all" "/redo/apiSecret" --set redo.existingSecret=

step "promtool: alert rules, the rendered PrometheusRule, the dashboard's PromQL"
promtool check rules "$CHART/files/alerts.yaml"
"$PYTHON" "$OPSUTIL" rule-spec "$CHART/files/alerts.yaml" "$WORK/rendered-rules.yaml" <"$WORK/all-on.yaml"
promtool check rules "$WORK/rendered-rules.yaml"
"$PYTHON" "$OPSUTIL" dashboard-rules "$CHART/dashboards/tracking-consumer.json" "$WORK/dashboard-rules.yaml"
promtool check rules "$WORK/dashboard-rules.yaml"
promtool test rules helm/alerts/alerts_test.yaml

step "dashboard: grafana-foundation-sdk strict unmarshal and Validate()"
(cd tools/dashboard-check && "$GO" build -o "$TOOLS/dashboard-check" .)
"$TOOLS/dashboard-check" "$CHART/dashboards/tracking-consumer.json"
# The check must be able to fail: a misspelt query field is refused by name.
sed 's/"expr":/"exprr":/' "$CHART/dashboards/tracking-consumer.json" >"$WORK/misspelt.json"
if "$TOOLS/dashboard-check" "$WORK/misspelt.json" >"$WORK/misspelt.out" 2>&1; then
    echo "FAIL: dashboard-check accepted a dashboard with a misspelt field" >&2
    exit 1
fi
grep -q "unexpected field 'exprr'" "$WORK/misspelt.out" || {
    echo "FAIL: dashboard-check refused the misspelt dashboard for another reason:" >&2
    cat "$WORK/misspelt.out" >&2
    exit 1
}
echo "refused as expected: a dashboard with a misspelt field (exprr)"

step "ops checks passed"
