// Package hooks runs postStart and preStop hooks as Kubernetes'
// LifecycleHandler does (exec, httpGet, sleep), and writes the hook log, the
// --hook-log-dir file of JSON lines that neighbours read on a shared volume.
// A full, missing or read-only volume never blocks or fails the container.
package hooks
