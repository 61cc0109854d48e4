package probes

import (
	"context"
	"net"
)

// checkTCP is up when a TCP connection to Host:Port succeeds, as the kubelet's
// tcpSocket probe: nothing is sent, the connection is closed at once.
func checkTCP(ctx context.Context, t Target, opts Options) error {
	return dialAndClose(ctx, net.Dialer{Control: opts.Control}, "tcp", net.JoinHostPort(t.Host, t.Port))
}

// dialAndClose connects to addr and closes the connection at once.
func dialAndClose(ctx context.Context, d net.Dialer, network, addr string) error {
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err // a *net.OpError already names the network and address
	}
	return conn.Close()
}
