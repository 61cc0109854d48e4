package drain

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/logschema"
)

// Report is what one stop saw: when the last new connection and the last
// request byte reached the app's watched ports, how many connections the
// stop signal and SIGKILL met, whether SIGKILL was needed and how much of
// the pod's grace budget the stop took. Times count from the start of the
// stop (the SIGTERM); a negative time or count is unknown: nothing seen,
// no port watched, or that moment never came.
//
// It answers the question every load-balancer guide leaves to a guess
// (how long must the drain be?): a last request byte well before the stop
// signal says the drain could be shorter, connections at SIGKILL say the
// grace period or the app's shutdown is too short.
type Report struct {
	// Ports are the app's ports watched; none: the traffic figures are
	// unknown.
	Ports []int
	// Watched says the ports could be watched (sock_diag worked).
	Watched bool
	// Arrivals and RequestBytes count the new connections and request
	// bytes seen from the start of the stop to its end.
	Arrivals     int
	RequestBytes uint64
	// LastArrival and LastRequestByte are when the last of them came,
	// from the start; -1 if none came or nothing was watched.
	LastArrival, LastRequestByte time.Duration
	// StopSignalAt is when the stop signal was sent; -1 if it never was
	// (the child exited while draining).
	StopSignalAt time.Duration
	// OpenAtStopSignal counts the connections to the ports open when the
	// stop signal was sent; -1 if unknown or never sent.
	OpenAtStopSignal int
	// Killed says SIGKILL was needed; OpenAtKill counts the connections
	// it cut (reset or closed without an answer): 0 without SIGKILL, -1
	// if unknown.
	Killed     bool
	OpenAtKill int
	// Took is the whole stop, from its start to the process group gone.
	Took time.Duration
	// TerminationGracePeriod is the pod's, 0 if unknown.
	TerminationGracePeriod time.Duration
}

// newReport is a Report of nothing known yet.
func newReport(ports []int, tgp time.Duration) Report {
	return Report{Ports: ports, LastArrival: -1, LastRequestByte: -1, StopSignalAt: -1, OpenAtStopSignal: -1, OpenAtKill: -1,
		TerminationGracePeriod: tgp}
}

// Warning reports whether the stop cut something: SIGKILL was needed, or
// connections were open when it came.
func (r Report) Warning() bool { return r.Killed || r.OpenAtKill > 0 }

// GraceUsed is Took as a fraction of the termination grace period; -1 if
// that is unknown.
func (r Report) GraceUsed() float64 {
	if r.TerminationGracePeriod <= 0 {
		return -1
	}
	return r.Took.Seconds() / r.TerminationGracePeriod.Seconds()
}

// Fields are the "drain report" line's. An unknown figure is left out. The
// time keys are those of the adaptive drain's last line, counted from the
// same start.
func (r Report) Fields() []zap.Field {
	since := func(key string, d time.Duration) zap.Field {
		if d < 0 {
			return zap.Skip()
		}
		return logschema.Seconds(key, d)
	}
	count := func(key string, n int) zap.Field {
		if n < 0 {
			return zap.Skip()
		}
		return zap.Int(key, n)
	}
	fields := []zap.Field{zap.Ints("ports", r.Ports)}
	if r.Watched {
		fields = append(fields, zap.Int("arrivals", r.Arrivals), zap.Uint64("request_bytes", r.RequestBytes))
	}
	fields = append(fields,
		since("last_arrival_after", r.LastArrival), since("last_request_byte_after", r.LastRequestByte),
		since("stop_signal_after", r.StopSignalAt),
		count("connections_at_stop_signal", r.OpenAtStopSignal), count("connections_at_sigkill", r.OpenAtKill),
		zap.Bool("sigkill", r.Killed), logschema.Seconds("took", r.Took))
	if r.TerminationGracePeriod > 0 {
		fields = append(fields, logschema.Seconds("termination_grace_period", r.TerminationGracePeriod),
			zap.Float64("grace_used", round2(r.GraceUsed())))
	}
	return fields
}

// Summary is the report in one short line, for the termination message
// and the Kubernetes Event.
func (r Report) Summary() string {
	var b strings.Builder
	b.WriteString("drain report:")
	switch {
	case len(r.Ports) == 0:
		b.WriteString(" traffic not watched (no port of the app known);")
	case !r.Watched:
		b.WriteString(" traffic not watched (sock_diag failed);")
	default:
		at := func(d time.Duration) string {
			if d < 0 {
				return "none"
			}
			return "+" + Seconds(d.Round(10*time.Millisecond))
		}
		fmt.Fprintf(&b, " last connection %s, last request byte %s;", at(r.LastArrival), at(r.LastRequestByte))
	}
	switch {
	case r.StopSignalAt < 0:
		b.WriteString(" the child exited before the stop signal;")
	case r.OpenAtStopSignal >= 0:
		fmt.Fprintf(&b, " stop signal at +%s with %d connection(s) open;", Seconds(r.StopSignalAt.Round(10*time.Millisecond)), r.OpenAtStopSignal)
	default:
		fmt.Fprintf(&b, " stop signal at +%s;", Seconds(r.StopSignalAt.Round(10*time.Millisecond)))
	}
	switch {
	case r.Killed && r.OpenAtKill >= 0:
		fmt.Fprintf(&b, " SIGKILL needed, %d connection(s) cut;", r.OpenAtKill)
	case r.Killed:
		b.WriteString(" SIGKILL needed;")
	default:
		b.WriteString(" no SIGKILL;")
	}
	fmt.Fprintf(&b, " took %s", Seconds(r.Took.Round(10*time.Millisecond)))
	if r.TerminationGracePeriod > 0 {
		fmt.Fprintf(&b, " of %s grace (%.0f%%)", Seconds(r.TerminationGracePeriod), 100*r.GraceUsed())
	}
	return b.String()
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// tracker watches the app's ports for the whole stop, for its Report: the
// adaptive drain polls through it while it decides, and a goroutine polls
// it from then (at once with a fixed drain) to the end. It serialises every
// use of the watch, whose one socket cannot answer two dumps at once. A
// nil *tracker watches nothing.
type tracker struct {
	start time.Time
	every time.Duration

	mu     sync.Mutex
	w      *Arrivals
	report Report

	stop chan struct{} // closed to end the polling goroutine
	done chan struct{} // closed when it has ended
}

// poll polls the watch and adds what it saw to the report.
func (t *tracker) poll() (Traffic, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, err := t.w.Poll()
	now := time.Now()
	if tr.Arrivals > 0 {
		t.report.Arrivals += tr.Arrivals
		t.report.LastArrival = now.Sub(t.start)
	}
	if tr.Bytes > 0 {
		t.report.RequestBytes += tr.Bytes
		t.report.LastRequestByte = max(tr.LastByte.Sub(t.start), 0)
	}
	return tr, err
}

// open counts the connections open now; -1 if unknown.
func (t *tracker) open() int {
	if t == nil {
		return -1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.w.Open()
	if err != nil {
		return -1
	}
	return n
}

// background polls every period until end; calling it again does nothing.
func (t *tracker) background() {
	if t == nil || t.done != nil {
		return
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.done)
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				_, _ = t.poll()
			}
		}
	}()
}

// end stops polling, takes a last look and closes the watch; the report's
// traffic figures are final after it.
func (t *tracker) end() Report {
	if t.done != nil {
		close(t.stop)
		<-t.done
	}
	_, _ = t.poll()
	_ = t.w.Close()
	return t.report
}
