//go:build !lifecycled_drain_connections_only

package drain

// connectionsOnlyBuild, true in a binary built with the tag
// lifecycled_drain_connections_only, makes every adaptive drain count new
// connections alone (Config.ConnectionsOnly): the benchmark and the
// zero-downtime tests build one to measure the request-aware drain
// against what it replaced, with no flag for it in the real binary.
const connectionsOnlyBuild = false
