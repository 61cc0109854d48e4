// Package proctest holds the helpers the tests of several packages share
// to run and watch real processes: one reaper for the test binary, whether
// a process is gone, a bound on how long a call may take before the test
// fails rather than hangs, a wait for a condition, a connection held open
// for a process to see, and a buffer for the output of several.
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/supervisor"
)

// Main is a TestMain for packages whose tests start processes: every one
// goes through one reaper, set in *reaper, as in lifecycled, where it is
// the process's only waiter. It runs the tests and exits with their code.
func Main(m *testing.M, reaper **supervisor.Reaper) {
	*reaper = supervisor.NewReaper(zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = (*reaper).Run(ctx) }()
	code := m.Run()
	cancel()
	os.Exit(code)
}

// Gone reports whether pid has exited: it no longer exists, or it is a
// zombie (or dead) waiting for a parent to reap it, which in a test
// sandbox may be an init that never does.
func Gone(pid int) bool {
	if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// Within fails the test unless f returns within d, and returns how long f
// took; it guards tests that would otherwise hang on a broken process
// lifecycle.
func Within(t testing.TB, d time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		f()
	}()
	select {
	case <-finished:
	case <-time.After(d):
		t.Fatalf("did not return within %s", d)
	}
	return time.Since(start)
}

// Poll calls cond at once and then every interval until it returns true,
// or returns ctx.Err() when ctx ends first.
func Poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// WaitReads waits until path has been opened read-only and closed n times
// after the call (inotify's IN_CLOSE_NOWRITE): another process's looks at a
// file, such as an --exit-with watcher's at a lock that its holder opened
// for writing. The n-th open means the look before it has ended.
func WaitReads(ctx context.Context, path string, n int) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_NOWRITE); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = f.SetReadDeadline(deadline)
	}
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for n > 0 {
		k, err := f.Read(buf)
		if err != nil {
			return fmt.Errorf("wait for %s to be read: %w", path, err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_CLOSE_NOWRITE != 0 {
				n--
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	return nil
}

// HeldConn opens a connection to a new listener on 127.0.0.1 and holds it,
// established, until the test ends or it calls the func returned, which
// closes both ends (what --drain-connections waits for): the listener's
// port, and that func.
func HeldConn(t testing.TB) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() {
		_ = client.Close()
		_ = server.Close()
	}
}

// SyncBuffer collects the output of several processes at once (exec's
// copying goroutines write, the test reads).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
