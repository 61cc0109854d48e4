package drain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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
// Why tcp_info and not the app's logs or a packet capture: the same dump
// answers it (INET_DIAG_INFO, which needs no privilege, for every socket
// of the namespace), and tcpi_bytes_received (Linux 4.1) counts the bytes
// each connection has received. A pooled keep-alive or HTTP/2 connection
// that carries a request between two polls has grown; one that only
// idles has not. The count includes the peer's FIN as one byte (rcv_nxt
// moves past it), so a connection the client closes is not taken for a
// request.
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
	tcpStateClose = 7

	inetDiagInfo = 2 // INET_DIAG_INFO: the attribute holding struct tcp_info
	// Offsets in struct tcp_info (include/uapi/linux/tcp.h).
	tcpiLastDataRecv  = 52
	tcpiBytesReceived = 128 // a __u64, Linux 4.1 and later
)

// Arrivals counts new TCP connections to local ports, and the request bytes
// they and the connections already open receive, IPv4 and IPv6, in the
// network namespace lifecycled runs in (the pod's): it takes the
// connections there at WatchArrivals as known, and Poll tells how many it
// has not known before. It sees a connection either alive, in a dump at
// Poll, or at its destruction, reported by the kernel as it happens; so a
// connection that opens and closes between two polls is counted too. When
// the kernel refuses the destruction reports (Exact false), only dumps are
// left, and a short connection is seen only if it lingers in TIME_WAIT
// (the server closed first, as an HTTP server with Connection: close does).
// Connections lifecycled itself opened (its probes, see Dials) count for
// nothing.
type Arrivals struct {
	ports map[uint16]bool
	own   *Dials
	// families are those with a listener on a watched port: an IPv4
	// socket on port P is no connection to an app listening on [::1]:P
	// only, but maybe some process's outgoing connection.
	families map[uint8]bool
	dumpFD   int
	events   *os.File // destruction reports; nil if the kernel refused them
	done     chan struct{}

	mu sync.Mutex
	// known are the connections already counted. A live one is seen
	// again at every Poll; a destroyed one is forgotten knownLinger after
	// its report.
	known   map[connID]*seenConn
	fresh   int       // connections new since the last Poll
	bytes   uint64    // request bytes received since the last Poll
	last    time.Time // when the last of them arrived
	noBytes bool      // a tcp_info without tcpi_bytes_received was seen
	lost    error     // destruction reports were lost (ENOBUFS)
}

// seenConn is what is known of one connection.
type seenConn struct {
	at   time.Time // when it was last seen alive or reported destroyed
	data uint64    // request bytes it had received then (its FIN not counted)
	own  bool      // lifecycled's own (see Dials): counts for nothing
}

// sighting is one connection as a dump or a destruction report shows it.
type sighting struct {
	id connID
	// peerPort is the client's port; 0 if the client is not in this
	// network namespace (its address is neither loopback nor the app's),
	// and so not lifecycled.
	peerPort  uint16
	hasData   bool          // tcp_info told the bytes received
	data      uint64        // request bytes received so far
	sinceData time.Duration // since the last of them (tcpi_last_data_recv)
}

// Traffic is what Poll saw since the Poll before.
type Traffic struct {
	// Arrivals counts new connections.
	Arrivals int
	// Bytes counts the request bytes received, on new connections and on
	// those already open.
	Bytes uint64
	// LastByte is when the last of those bytes arrived, as the kernel
	// timed it (to a few milliseconds); zero if none did.
	LastByte time.Time
	// NoBytes says the kernel does not count bytes received (before
	// Linux 4.1): only Arrivals can be trusted.
	NoBytes bool
}

// Any reports whether a connection or a request byte arrived.
func (t Traffic) Any() bool { return t.Arrivals > 0 || t.Bytes > 0 }

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

// WatchArrivals starts watching ports; the connections own recorded (it may
// be nil) are not counted. Close must be called when done.
func WatchArrivals(ports []int, own *Dials) (*Arrivals, error) {
	if len(ports) == 0 {
		return nil, errors.New("watch new connections: no port")
	}
	a := &Arrivals{ports: map[uint16]bool{}, own: own, known: map[connID]*seenConn{}, dumpFD: -1, done: make(chan struct{})}
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
	// The connections open now are known, with the bytes they received.
	if _, err := a.Poll(); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// Exact reports whether connections that open and close between two polls
// are counted (see Arrivals).
func (a *Arrivals) Exact() bool { return a.events != nil }

// Poll returns the traffic to the ports since the last Poll (or
// WatchArrivals). An error means it is unknown: the caller must assume
// traffic arrived.
func (a *Arrivals) Poll() (Traffic, error) {
	states := uint32(connectionStates)
	if a.events == nil {
		states |= 1 << tcpStateTimeWait
	}
	now := time.Now()
	var alive []sighting
	for port := range a.ports {
		for family := range a.families {
			got, err := a.dump(family, port, states)
			if err != nil {
				return Traffic{}, err
			}
			alive = append(alive, got...)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seenAlive(alive, now)
	t := Traffic{Arrivals: a.fresh, Bytes: a.bytes, LastByte: a.last, NoBytes: a.noBytes}
	lost := a.lost
	a.fresh, a.bytes, a.last, a.lost = 0, 0, time.Time{}, nil
	return t, lost
}

// Open counts the connections to the ports that are open now: established,
// or closed by the client but not yet by the app (CLOSE_WAIT), lifecycled's
// own not counted. They are what a stop signal or a SIGKILL would cut. It
// must not be called at the same time as Poll (they share one socket).
func (a *Arrivals) Open() (int, error) {
	const open = 1<<tcpStateEstablished | 1<<tcpStateCloseWait
	now := time.Now()
	n := 0
	for port := range a.ports {
		for family := range a.families {
			got, err := a.dump(family, port, open)
			if err != nil {
				return 0, err
			}
			for _, s := range got {
				if !a.own.owns(s.peerPort, now) {
					n++
				}
			}
		}
	}
	return n, nil
}

// seenAlive counts the connections of a dump that are not known yet and
// the bytes received since the last look, marks all of them seen at now
// (the dump's start), and forgets the destroyed ones reported knownLinger
// ago or more. Must be called with a.mu held.
func (a *Arrivals) seenAlive(alive []sighting, now time.Time) {
	for _, s := range alive {
		a.seen(s, now)
	}
	for id, c := range a.known {
		if now.Sub(c.at) >= knownLinger {
			delete(a.known, id)
		}
	}
}

// seen counts a connection if it is not known yet, and the request bytes
// it received since it was last seen, and keeps it known for knownLinger
// from now. Must be called with a.mu held.
func (a *Arrivals) seen(s sighting, now time.Time) {
	c, ok := a.known[s.id]
	if !ok {
		c = &seenConn{own: a.own.owns(s.peerPort, now)}
		a.known[s.id] = c
		if !c.own {
			a.fresh++
		}
	}
	c.at = now
	if c.own {
		return
	}
	if !s.hasData {
		a.noBytes = true
		return
	}
	if s.data > c.data {
		a.bytes += s.data - c.data
		c.data = s.data
		at := now.Add(-s.sinceData)
		if at.After(now) {
			at = now
		}
		if at.After(a.last) {
			a.last = at
		}
	}
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
func (a *Arrivals) dump(family uint8, port uint16, states uint32) ([]sighting, error) {
	var out []sighting
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
	r[2] = 1 << (inetDiagInfo - 1) // idiag_ext: tcp_info with each socket
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

// connection reads an inet_diag_msg and its attributes if it is a
// connection to one of the ports: local port watched, a remote port (a
// listener has none).
func (a *Arrivals) connection(msg []byte) (sighting, bool) {
	var s sighting
	if len(msg) < sizeofDiagMsg {
		return s, false
	}
	if !a.families[msg[0]] {
		return s, false
	}
	sport, dport := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])
	if !a.ports[sport] || dport == 0 {
		return s, false
	}
	s.id[0] = msg[0]
	copy(s.id[1:], msg[4:44]) // ports, addresses, interface
	if local, peer := msg[8:24], msg[24:40]; bytes.Equal(local, peer) || loopback(msg[0], peer) {
		s.peerPort = dport
	}
	info := diagAttr(msg[sizeofDiagMsg:], inetDiagInfo)
	if len(info) >= tcpiBytesReceived+8 {
		ne := binary.NativeEndian
		s.hasData = true
		s.data = ne.Uint64(info[tcpiBytesReceived:])
		s.sinceData = time.Duration(ne.Uint32(info[tcpiLastDataRecv:])) * time.Millisecond
		if finReceived(msg[1]) && s.data > 0 {
			s.data-- // the FIN
		}
	}
	return s, true
}

// loopback reports whether addr (16 bytes of inet_diag_sockid) of family is
// a loopback address: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
func loopback(family uint8, addr []byte) bool {
	if family == unix.AF_INET {
		return addr[0] == 127
	}
	ip := net.IP(addr[:16])
	return ip.IsLoopback()
}

// finReceived reports whether a socket in state has received its peer's
// FIN. A destroyed socket is reported in CLOSE, whether it was closed by
// FINs or reset: taken as closed by FINs, a reset connection's last byte
// (if it was a lone byte since the last look) would be missed.
func finReceived(state uint8) bool {
	switch state {
	case tcpStateCloseWait, tcpStateLastAck, tcpStateClosing, tcpStateTimeWait, tcpStateClose:
		return true
	}
	return false
}

// diagAttr returns the payload of the first netlink attribute of type typ
// in attrs, nil if there is none.
func diagAttr(attrs []byte, typ uint16) []byte {
	ne := binary.NativeEndian
	for len(attrs) >= unix.SizeofRtAttr {
		n, t := int(ne.Uint16(attrs)), ne.Uint16(attrs[2:])
		if n < unix.SizeofRtAttr || n > len(attrs) {
			return nil
		}
		if t&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER) == typ {
			return attrs[unix.SizeofRtAttr:n]
		}
		n = (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if n > len(attrs) {
			return nil
		}
		attrs = attrs[n:]
	}
	return nil
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
			if c, ok := a.connection(m.Data); ok {
				a.seen(c, now)
			}
		}
		a.mu.Unlock()
	}
}
