package probes

import (
	"context"
	"net"
)

// checkUnix is up when a connection to the Unix stream socket at Path
// succeeds: the socket file merely existing says nothing about whether a
// server still listens on it.
func checkUnix(ctx context.Context, t Target, _ Options) error {
	return dialAndClose(ctx, net.Dialer{}, "unix", t.Path)
}
