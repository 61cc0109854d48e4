package probes

import (
	"github.com/lifecycled/lifecycled/supervisor"

	"context"
	"fmt"
	"syscall"
	"time"
)

// Options are the settings shared by all checks.
type Options struct {
	// UserAgent is sent by HTTP and gRPC checks ("lifecycled/<version>"), so
	// that the checked service can tell probes from users in its logs.
	UserAgent string
	// Commands runs exec: targets. It is the process's one reaper: a
	// command started any other way would have its status stolen by it.
	Commands *supervisor.Reaper
	// Control, if not nil, is the net.Dialer Control of TCP, HTTP and
	// gRPC checks: the adaptive drain records there the ports of
	// lifecycled's own connections to the app (drain.Dials).
	Control func(network, address string, c syscall.RawConn) error
}

// checker checks one target kind once. It returns nil when the target is up
// and otherwise the reason it is down. It must return by ctx's deadline.
type checker func(ctx context.Context, t Target, opts Options) error

// checkers returns the dispatch table from kind to checker: adding a kind is
// adding a file and a line here. It is built per call rather than kept in a
// package variable so that the package holds no state at all.
func checkers() map[Kind]checker {
	return map[Kind]checker{
		KindTCP:   checkTCP,
		KindHTTP:  checkHTTP,
		KindHTTPS: checkHTTP,
		KindUnix:  checkUnix,
		KindFile:  checkFile,
		KindDNS:   checkDNS,
		KindGRPC:  checkGRPC,
		KindExec:  checkExec,
	}
}

// Check checks t once. nil means up; a non-nil error is the reason it is down,
// worded without the target itself, since callers log and label by t.String().
// The deadline comes from ctx only: Check adds no timeout of its own, so a
// ctx without a deadline lets a hanging target hang Check.
func Check(ctx context.Context, t Target, opts Options) error {
	check, ok := checkers()[t.Kind]
	if !ok {
		return fmt.Errorf("unknown target kind %q", t.Kind)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return check(ctx, t, opts)
}

// expired reports whether ctx is done or past its deadline. Both are needed:
// a dial fails by the deadline itself ("i/o timeout"), a moment before the
// context's timer marks the context done.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}
