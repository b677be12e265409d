//go:build tools

// Package tools keeps etcd's packages in go.mod and go.sum; scripts/k8s-check.sh builds the
// command itself with `go build go.etcd.io/etcd/server/v3`.
package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
