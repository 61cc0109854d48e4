// Package drain holds what happens when a container stops.
//
// The stop sequence (Sequence) is one small state machine: fail readiness,
// wait for the load balancers to forget the pod, wait for open connections,
// run the preStop hook, send the stop signal, and SIGKILL the process group
// when the grace period runs out. Budget is its worst-case timeline, checked
// against the pod's terminationGracePeriodSeconds.
//
// Nothing here starts a goroutine of its own accord or keeps package-level
// state: loggers, registries and paths are passed in by the caller.
package drain
