package drain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Why sock_diag and not /proc/net/tcp*: both list the sockets of the
// network namespace, but only sock_diag filters by local port in the kernel
// and answers in binary; and only sock_diag can also tell of sockets as
// they are destroyed (the SKNLGRP_INET*_TCP_DESTROY groups, which `ss -E`
// uses), so a connection that opens and closes between two looks is still
// seen. Between two polls /proc/net/tcp would miss it unless it happened to
// linger in TIME_WAIT. The listener's own numbers do not help: its accept
// queue is a level, not a count, and the namespace's PassiveOpens counter
// mixes every port (the kubelet's probes of --listen, metric scrapes).
//
// Why a connection is known by its addresses and ports, not by its socket
// cookie: one connection can be two sockets. When two CPUs complete the
// same handshake at once (the client's last ACK and its first data, on a
// busy host), each makes a socket for it; the loser is destroyed at once
// and reported like any closed connection, sometimes even with the
// winner's cookie (both inherit the cookie of the pending request). Counted
// by cookie, such a connection arrived twice, and a reported destruction
// could hide the winner. Both sockets have the connection's addresses and
// ports, which no other connection has while it lives.

// TCP states (include/net/tcp_states.h) as bits of inet_diag_req_v2.states.
const (
	tcpStateEstablished = 1
	tcpStateFinWait1    = 4
	tcpStateFinWait2    = 5
	tcpStateTimeWait    = 6
	tcpStateCloseWait   = 8
	tcpStateLastAck     = 9
	tcpStateListen      = 10
	tcpStateClosing     = 11
)

// connectionStates are the states of a connection that was accepted: not
// LISTEN, not a handshake in progress (SYN_RECV: it is counted once
// accepted), not an outgoing SYN_SENT.
const connectionStates = 1<<tcpStateEstablished | 1<<tcpStateFinWait1 | 1<<tcpStateFinWait2 |
	1<<tcpStateCloseWait | 1<<tcpStateLastAck | 1<<tcpStateClosing

const (
	sizeofDiagReq = 56 // struct inet_diag_req_v2
	sizeofDiagMsg = 72 // struct inet_diag_msg
)

// Arrivals counts new TCP connections to local ports, IPv4 and IPv6, in the
// network namespace lifecycled runs in (the pod's): it takes the
// connections there at WatchArrivals as known, and Poll tells how many it
// has not known before. It sees a connection either alive, in a dump at
// Poll, or at its destruction, reported by the kernel as it happens; so a
// connection that opens and closes between two polls is counted too. When
// the kernel refuses the destruction reports (Exact false), only dumps are
// left, and a short connection is seen only if it lingers in TIME_WAIT
// (the server closed first, as an HTTP server with Connection: close does).
type Arrivals struct {
	ports map[uint16]bool
	// families are those with a listener on a watched port: an IPv4
	// socket on port P is no connection to an app listening on [::1]:P
	// only, but maybe some process's outgoing connection.
	families map[uint8]bool
	dumpFD   int
	events   *os.File // destruction reports; nil if the kernel refused them
	done     chan struct{}

	mu sync.Mutex
	// known are the connections already counted, with when each was last
	// seen alive or reported destroyed. A live one is seen again at every
	// Poll; a destroyed one is forgotten knownLinger after its report.
	known map[connID]time.Time
	fresh int   // connections new since the last Poll
	lost  error // destruction reports were lost (ENOBUFS)
}

// connID is what tells one TCP connection from every other alive at the
// same time: family, ports, addresses and interface (inet_diag_sockid
// without its cookie).
type connID [1 + 40]byte

// knownLinger is how long a destroyed connection stays known. It covers a
// dump that was under way when the connection went (it may still list
// it), and the destroyed duplicate of a connection that is still alive and
// will be listed by the next dump. A new connection can only be taken for
// a known one if its client reuses the same address and port for the same
// server within that time: a client that closed first holds them in
// TIME_WAIT for 60 s, and Linux picks a client's next port for the same
// server further along its range each time.
const knownLinger = 2 * time.Second

// WatchArrivals starts watching ports. Close must be called when done.
func WatchArrivals(ports []int) (*Arrivals, error) {
	if len(ports) == 0 {
		return nil, errors.New("watch new connections: no port")
	}
	a := &Arrivals{ports: map[uint16]bool{}, known: map[connID]time.Time{}, dumpFD: -1, done: make(chan struct{})}
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("watch new connections: port %d is not a port number", p)
		}
		a.ports[uint16(p)] = true
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("watch new connections: netlink sock_diag socket: %w", err)
	}
	a.dumpFD = fd
	if err := a.findListeners(); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	// Subscribe before the first dump: a connection destroyed in between
	// is then reported rather than missed.
	a.events, _ = subscribeDestroyed()
	if a.events != nil {
		go a.readDestroyed()
	} else {
		close(a.done)
	}
	if _, err := a.Poll(); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// Exact reports whether connections that open and close between two polls
// are counted (see Arrivals).
func (a *Arrivals) Exact() bool { return a.events != nil }

// Poll returns how many connections to the ports arrived since the last
// Poll (or WatchArrivals). An error means the count is unknown: the caller
// must assume connections arrived.
func (a *Arrivals) Poll() (int, error) {
	states := uint32(connectionStates)
	if a.events == nil {
		states |= 1 << tcpStateTimeWait
	}
	now := time.Now()
	var alive []connID
	for port := range a.ports {
		for family := range a.families {
			got, err := a.dump(family, port, states)
			if err != nil {
				return 0, err
			}
			alive = append(alive, got...)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seenAlive(alive, now)
	n, lost := a.fresh, a.lost
	a.fresh, a.lost = 0, nil
	return n, lost
}

// seenAlive counts the connections of a dump that are not known yet, marks
// all of them seen at now (the dump's start), and forgets the destroyed
// ones reported knownLinger ago or more. Must be called with a.mu held.
func (a *Arrivals) seenAlive(alive []connID, now time.Time) {
	for _, id := range alive {
		if _, ok := a.known[id]; !ok {
			a.fresh++
		}
		a.known[id] = now
	}
	for id, at := range a.known {
		if now.Sub(at) >= knownLinger {
			delete(a.known, id)
		}
	}
}

// seenDestroyed counts a destroyed connection if it is not known yet and
// keeps it known for knownLinger from now. Must be called with a.mu held.
func (a *Arrivals) seenDestroyed(id connID, now time.Time) {
	if _, ok := a.known[id]; !ok {
		a.fresh++
	}
	a.known[id] = now
}

// Close stops watching.
func (a *Arrivals) Close() error {
	err := unix.Close(a.dumpFD)
	if a.events != nil {
		err = errors.Join(err, a.events.Close())
	}
	<-a.done
	return err
}

// findListeners sets families to those with a listener on a watched port,
// or to both if there is none (the app may not listen yet, or listen in
// another way): counting too much only makes the drain longer.
func (a *Arrivals) findListeners() error {
	a.families = map[uint8]bool{}
	for port := range a.ports {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			got, err := a.dumpMsgs(family, port, 1<<tcpStateListen, func(msg []byte) bool {
				return len(msg) >= sizeofDiagMsg && binary.BigEndian.Uint16(msg[4:]) == port
			})
			if err != nil {
				return err
			}
			if got > 0 {
				a.families[family] = true
			}
		}
	}
	if len(a.families) == 0 {
		a.families[unix.AF_INET], a.families[unix.AF_INET6] = true, true
	}
	return nil
}

// dump lists the connections to local port of family.
func (a *Arrivals) dump(family uint8, port uint16, states uint32) ([]connID, error) {
	var out []connID
	_, err := a.dumpMsgs(family, port, states, func(msg []byte) bool {
		c, ok := a.connection(msg)
		if ok {
			out = append(out, c)
		}
		return ok
	})
	return out, err
}

// dumpMsgs asks for the TCP sockets of family on local port in states and
// passes each inet_diag_msg to keep; it returns how many were kept.
func (a *Arrivals) dumpMsgs(family uint8, port uint16, states uint32, keep func(msg []byte) bool) (int, error) {
	req := make([]byte, unix.SizeofNlMsghdr+sizeofDiagReq)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], states)
	// id.idiag_sport: the kernel skips sockets on other local ports.
	binary.BigEndian.PutUint16(r[8:], port)
	if err := unix.Sendto(a.dumpFD, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("watch new connections: sock_diag request: %w", err)
	}
	kept := 0
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(a.dumpFD, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, fmt.Errorf("watch new connections: sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("watch new connections: sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return kept, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						if unix.Errno(-errno) == unix.ENOENT && family == unix.AF_INET6 {
							return kept, nil // no IPv6 in this kernel
						}
						return 0, fmt.Errorf("watch new connections: sock_diag: %w", unix.Errno(-errno))
					}
				}
				return kept, nil
			}
			if keep(m.Data) {
				kept++
			}
		}
	}
}

// connection returns the identity of an inet_diag_msg if it is a
// connection to one of the ports: local port watched, a remote port (a
// listener has none).
func (a *Arrivals) connection(msg []byte) (connID, bool) {
	var id connID
	if len(msg) < sizeofDiagMsg {
		return id, false
	}
	if !a.families[msg[0]] {
		return id, false
	}
	sport, dport := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])
	if !a.ports[sport] || dport == 0 {
		return id, false
	}
	id[0] = msg[0]
	copy(id[1:], msg[4:44]) // ports, addresses, interface
	return id, true
}

// subscribeDestroyed opens a sock_diag socket in the TCP destruction groups
// of IPv4 and IPv6. Unprivileged processes may join them
// (NL_CFG_F_NONROOT_RECV); a kernel without them refuses.
func subscribeDestroyed() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	// Room for bursts; the kernel caps it at net.core.rmem_max, and a
	// burst beyond it is detected (ENOBUFS), not silently lost.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	groups := uint32(1<<(unix.SKNLGRP_INET_TCP_DESTROY-1) | 1<<(unix.SKNLGRP_INET6_TCP_DESTROY-1))
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "sock_diag destroy"), nil
}

// readDestroyed counts the destroyed connections not yet seen, until Close.
func (a *Arrivals) readDestroyed() {
	defer close(a.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := a.events.Read(buf)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				a.mu.Lock()
				a.lost = errors.New("watch new connections: reports of closed connections were lost (receive buffer full)")
				a.mu.Unlock()
				continue
			}
			return // closed
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		now := time.Now()
		a.mu.Lock()
		for _, m := range msgs {
			if m.Header.Type != unix.SOCK_DIAG_BY_FAMILY {
				continue
			}
			if id, ok := a.connection(m.Data); ok {
				a.seenDestroyed(id, now)
			}
		}
		a.mu.Unlock()
	}
}
