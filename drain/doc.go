// Package drain holds what happens when a container stops, and the files it
// leaves behind for its neighbours on shared volumes.
//
// The stop sequence (Sequence) is one small state machine: fail readiness,
// wait for the load balancers to forget the pod, wait for open connections,
// run the preStop hook, send the stop signal, and SIGKILL the process group
// when the grace period runs out. Hooks (Runner) follow Kubernetes'
// LifecycleHandler: exec, httpGet and sleep. The hook log, the tombstone and
// the termination log are written so that a full, missing or read-only volume
// never blocks or fails the container.
//
// Nothing here starts a goroutine of its own accord or keeps package-level
// state: loggers, registries and paths are passed in by main.
package drain
