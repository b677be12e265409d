//go:build tools

// Package tools keeps kube-apiserver's packages in go.mod and go.sum; scripts/k8s-check.sh builds
// the command itself with `go build k8s.io/kubernetes/cmd/kube-apiserver`.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
