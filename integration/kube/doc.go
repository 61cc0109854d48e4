// Package kube holds the tests that prove lifecycled's Kubernetes claims
// against a real cluster (package cluster): rolling restarts under load,
// the kubelet's hooks and probes, termination messages, Jobs with
// sidecars, init-container waits, and each drain against a node whose
// kube-proxy lags (TestKubeProxyLag, which needs 3 nodes).
//
// The tests carry the build tag "kube" so that `go test ./...` does not
// bring a cluster up; `make kube-test` (and `make test`, after the other
// tests) runs them:
//
//	go test -tags kube -count=1 -v ./integration/kube/
//
// TestMain brings one cluster up for the whole run, shares it with every
// test (each in a namespace of its own) and tears it down, failing the run
// if any cluster process or changed host setting is left behind. With
// KUBE_REUSE=1 the tests run against the cluster `make kube-up` left
// running (and its images), and leave it running: quicker rounds while
// writing a test.
//
// KUBE_NODES=3 (what .ci/kube-test.sh sets) brings up two more nodes;
// TestMain taints them so that every other test's pods stay on node 1, as
// on a one-node cluster, and TestKubeProxyLag's pods tolerate the taint.
// Without it TestKubeProxyLag skips.
package kube
