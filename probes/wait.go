package probes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/ctxtime"
	"github.com/lifecycled/lifecycled/internal/logschema"
)

// FirstBackoff is the first pause between attempts (CONTRACT section 4): short,
// because a dependency started alongside is often up within moments.
// `lifecycled explain` prints it.
const FirstBackoff = 50 * time.Millisecond

// refusedDoubling is how long the pause after a refused attempt takes to
// double: the backoff grows with the time waited, not with the attempts
// made. A refusal (no listener on the port, no socket file, no file) is
// answered by the dependency's kernel without waking the dependency itself,
// so checking often costs it next to nothing, and a dependency that comes up
// in its first seconds is seen within about 100 ms: the pause is 50 ms at
// first, 100 ms after 2 s, 200 ms after 4 s, and reaches a 1 s
// --wait-interval after about 8.6 s (about 60 checks in all by then).
const refusedDoubling = 2 * time.Second

// minAttemptTimeout is the least time one attempt gets, however short the
// interval: a TLS handshake or a busy DNS server needs it, and an attempt that
// times out too early would fail a dependency that is in fact up.
const minAttemptTimeout = time.Second

// WaitConfig configures WaitAll. Zero values take the defaults noted.
type WaitConfig struct {
	// MaxInterval caps the pause between attempts (--wait-interval, default 1s).
	MaxInterval time.Duration
	// Timeout bounds the whole wait (--wait-timeout); 0 means no limit.
	Timeout time.Duration
	// ProgressEvery is the least time between two progress logs of one target
	// (default 5s), so a long wait is visible without flooding the log.
	ProgressEvery time.Duration
	// Logger receives progress; nil logs nothing.
	Logger *zap.Logger
	// Metrics receives lifecycled_dependency_*; nil records nothing.
	Metrics *Metrics
	// Options are passed to every check.
	Options Options
}

// NotUpError is WaitAll's error when the timeout passed with targets still
// down. The lifecycle maps it to exit code 124.
type NotUpError struct {
	// Targets are the targets still down, in the order given to WaitAll.
	Targets []string
	// Last holds each such target's last error; "" if no attempt finished.
	Last map[string]string
}

// Error names each target still down and its last error, on one line.
func (e *NotUpError) Error() string {
	var b strings.Builder
	b.WriteString("dependencies not up: ")
	for i, t := range e.Targets {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(t)
		b.WriteString(" (")
		if last := e.Last[t]; last != "" {
			b.WriteString(oneLine([]byte(last)))
		} else {
			b.WriteString("no attempt finished")
		}
		b.WriteString(")")
	}
	return b.String()
}

// WaitAll returns nil once every target is up. Targets are waited for in
// parallel, each retried with exponential backoff from 50ms up to MaxInterval,
// so the total wait is that of the slowest, not the sum. After a refused
// attempt the pause doubles every 2 s waited (see refusedDoubling); after
// any other failure it doubles per attempt. If cfg.Timeout passes
// first it returns a *NotUpError; if ctx is cancelled (SIGTERM while waiting)
// it returns ctx.Err() as soon as the attempts in flight have stopped, which
// they do at once since they share the cancelled context.
func WaitAll(ctx context.Context, targets []Target, cfg WaitConfig) error {
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}

	waitCtx, cancel := context.WithCancel(ctx)
	if cfg.Timeout > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, cfg.Timeout)
	}
	defer cancel()

	start := time.Now()
	var (
		mu   sync.Mutex
		last = make(map[string]string, len(targets)) // guarded by mu
		up   = make([]bool, len(targets))            // each goroutine writes its own slot
		wg   sync.WaitGroup
	)
	for i, t := range targets {
		cfg.Metrics.setDependency(t.String(), false, 0)
		wg.Go(func() {
			up[i] = waitOne(waitCtx, t, cfg, start, func(err error) {
				mu.Lock()
				last[t.String()] = err.Error()
				mu.Unlock()
			})
		})
	}
	wg.Wait()

	if err := ctx.Err(); err != nil {
		return err
	}
	notUp := &NotUpError{Last: make(map[string]string)}
	for i, t := range targets {
		if !up[i] {
			notUp.Targets = append(notUp.Targets, t.String())
			notUp.Last[t.String()] = last[t.String()]
		}
	}
	if len(notUp.Targets) > 0 {
		return notUp
	}
	return nil
}

// waitOne retries t until it is up (true) or ctx is done (false), reporting
// each failure to failed.
func waitOne(ctx context.Context, t Target, cfg WaitConfig, start time.Time, failed func(error)) bool {
	log := cfg.Logger.With(zap.Stringer("target", t))
	attemptTimeout := max(cfg.MaxInterval, minAttemptTimeout)
	backoff := min(FirstBackoff, cfg.MaxInterval)
	lastProgress := start // the first progress line comes after ProgressEvery: short waits stay quiet
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := Check(attemptCtx, t, cfg.Options)
		if err != nil && expired(attemptCtx) && !expired(ctx) {
			err = fmt.Errorf("no answer within %s: %w", attemptTimeout, err)
		}
		cancel()
		waited := time.Since(start)
		if err == nil {
			cfg.Metrics.setDependency(t.String(), true, waited.Seconds())
			log.Info("dependency up", zap.Int("attempt", attempt), logschema.Seconds("waited", waited))
			return true
		}
		cfg.Metrics.setDependency(t.String(), false, waited.Seconds())
		if expired(ctx) {
			// An attempt cut short by the end of the wait says nothing about
			// the target; keep the error of the last complete attempt, if any.
			if attempt == 1 {
				failed(err)
			}
			return false
		}
		failed(err)
		log.Debug("dependency not up", zap.Int("attempt", attempt), zap.Error(err))
		if now := time.Now(); now.Sub(lastProgress) >= cfg.ProgressEvery {
			lastProgress = now
			log.Info("waiting for dependency", zap.Int("attempt", attempt),
				logschema.Seconds("waited", waited), zap.Error(err))
		}

		var pause time.Duration
		if refused(err) {
			pause = refusedPause(waited, cfg.MaxInterval)
		} else {
			// The dependency (or its resolver) did the work of
			// answering: back off per attempt, as kubelets do.
			pause = backoff
			backoff = min(backoff*2, cfg.MaxInterval)
		}
		if ctxtime.Sleep(ctx, jitter(pause)) != nil {
			return false
		}
	}
}

// refused reports whether err is a refusal by the dependency's kernel or
// file system: a cheap answer, worth asking again soon (see
// refusedDoubling).
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)
}

// refusedPause is the pause after a refused attempt, waited into the wait:
// FirstBackoff doubled every refusedDoubling, at most maxInterval.
func refusedPause(waited, maxInterval time.Duration) time.Duration {
	pause := float64(FirstBackoff) * math.Exp2(waited.Seconds()/refusedDoubling.Seconds())
	return time.Duration(min(pause, float64(maxInterval)))
}

// jitter shortens d by up to a quarter, at random, so that pods started
// together (a rollout, a node reboot) do not check their dependency in
// lockstep; it never lengthens it, so --wait-interval stays a ceiling.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}
