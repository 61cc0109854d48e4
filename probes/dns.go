package probes

import (
	"context"
	"fmt"
	"net"
)

// checkDNS is up when Name resolves to at least one address, through the
// system's resolver configuration (/etc/hosts, then DNS), as the application
// itself would resolve it.
func checkDNS(ctx context.Context, t Target, _ Options) error {
	var r net.Resolver
	addrs, err := r.LookupHost(ctx, t.Name)
	if err != nil {
		return err // a *net.DNSError names the name
	}
	if len(addrs) == 0 {
		return fmt.Errorf("lookup %s: no addresses", t.Name)
	}
	return nil
}
