// Package freeport hands out TCP ports of 127.0.0.1 for tests and harnesses
// that must name a port before the process that listens on it starts.
//
// The usual trick, listen on ":0" and close, returns a port of the ephemeral
// range, the range the kernel also draws from for the local port of every
// outgoing connection. A test that opens thousands of connections (a load
// generator, a balancer) leaves those ports in TIME_WAIT, and the server
// started a moment later fails with "bind: address already in use": CI saw it.
// The kernel never picks a port below the ephemeral range by itself, so a
// port from there can only be taken by another caller of this package: within
// a process it is never handed out twice, and across processes the pick is
// random among thousands.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port handed out: above the well-known and most
// registered server ports.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Loopback returns a TCP port of 127.0.0.1 that nothing listened on a moment
// ago, below the ephemeral range, and that this process was not given before.
func Loopback() (int, error) {
	highest := ephemeralLow() - 1
	if highest < lowest+1000 {
		return 0, fmt.Errorf("freeport: the ephemeral range starts at %d, too low to pick a port below it", highest+1)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := lowest + rand.IntN(highest-lowest+1)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = ln.Close()
		given[p] = true
		return p, nil
	}
	return 0, errors.New("freeport: no free port of 127.0.0.1 below the ephemeral range after 200 tries")
}

// ephemeralLow is the first port of the kernel's ephemeral range; Linux's
// default when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
