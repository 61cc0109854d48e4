package drain

import (
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dials records the local ports of lifecycled's own connections to the app
// (its readiness and liveness probes), so that the adaptive drain does not
// take them for traffic and the probes can go on while it runs. The app's
// end of such a connection has lifecycled's port as its peer port.
//
// Why a port bound before the connection is made, not the port read after
// the dial: the app's end exists as soon as the handshake is done, a moment
// before the dial returns, and a dump in that moment would count it. And
// why ports, not the sockets' owners: sock_diag tells a socket's inode, but
// a connection closed between two dumps is seen only as the app's end,
// whose owner is the app.
//
// A nil *Dials records nothing and owns nothing.
type Dials struct {
	mu    sync.Mutex
	ports map[uint16]time.Time // local port -> when it was bound
}

// ownedFor is how long after its dial a connection seen with a recorded
// port is taken for lifecycled's: the app's end appears once the
// handshake is done, within the probe's timeout; and a port is kept no
// longer, since once lifecycled's socket is gone another client may get
// it.
const ownedFor = 30 * time.Second

// NewDials returns an empty record.
func NewDials() *Dials { return &Dials{ports: map[uint16]time.Time{}} }

// Control is a net.Dialer's Control: it binds a TCP socket to a free port
// before it connects, and records the port. A socket it cannot bind is
// left to connect as usual, unrecorded: counted as traffic, it can only
// make the drain longer.
func (d *Dials) Control(network, _ string, c syscall.RawConn) error {
	if d == nil {
		return nil
	}
	var any unix.Sockaddr
	switch network {
	case "tcp4":
		any = &unix.SockaddrInet4{}
	case "tcp6":
		any = &unix.SockaddrInet6{}
	default:
		return nil
	}
	var port int
	_ = c.Control(func(fd uintptr) {
		if unix.Bind(int(fd), any) != nil {
			return
		}
		switch sa, err := unix.Getsockname(int(fd)); a := sa.(type) {
		case *unix.SockaddrInet4:
			if err == nil {
				port = a.Port
			}
		case *unix.SockaddrInet6:
			if err == nil {
				port = a.Port
			}
		}
	})
	if port == 0 {
		return nil
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, at := range d.ports {
		if now.Sub(at) >= ownedFor {
			delete(d.ports, p)
		}
	}
	d.ports[uint16(port)] = now
	return nil
}

// owns reports whether a connection first seen at now with peer port port
// is one of lifecycled's own.
func (d *Dials) owns(port uint16, now time.Time) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.ports[port]
	return ok && now.Sub(at) < ownedFor
}
