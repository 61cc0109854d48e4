//go:build lifecycled_drain_connections_only

package drain

// connectionsOnlyBuild: see connonly.go.
const connectionsOnlyBuild = true
