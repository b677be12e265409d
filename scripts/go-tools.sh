# Sourced by scripts/ops-checks.sh and scripts/k8s-check.sh: Go tools at pinned versions, built
# once with `go install` from the module proxy into $TOOLS/<name>-<version>/ and reused.
TOOLS=${OPS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tracking-consumer-ops}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
HELM_VERSION=v3.22.0

install_go_tool() {  # name version package -> prints the binary's path
    local name=$1 version=$2 package=$3 dir="$TOOLS/$1-$2"
    if [[ ! -x "$dir/$name" ]]; then
        echo "installing $name $version with go install" >&2
        GOBIN="$dir" "$GO" install "$package@$version" >&2
    fi
    echo "$dir/$name"
}

install_helm() {  # -> prints helm's path
    install_go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
}
