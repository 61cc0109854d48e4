package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/internal/sigset"
)

// Real-time signal range on Linux as seen by programs: glibc keeps 32 and 33
// for itself, so SIGRTMIN is 34 for every libc-based child.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// ForwardedSignals is every signal lifecycled catches and passes on; the
// list and the reasons for it are in package sigset.
func ForwardedSignals() []syscall.Signal { return sigset.Forwarded() }

// SignalName returns the conventional name of sig: "SIGTERM", "SIGRTMIN+3".
func SignalName(sig syscall.Signal) string {
	if sig >= sigRTMin && sig <= sigRTMax {
		if sig == sigRTMin {
			return "SIGRTMIN"
		}
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-sigRTMin)
	}
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// ParseSignal accepts a signal by number ("15"), by name with or without the
// SIG prefix, any case ("TERM", "sigterm"), or as a real-time offset
// ("RTMIN+2", "SIGRTMAX-1"). Every signal it returns is named by SignalName
// in a form it parses back.
func ParseSignal(s string) (syscall.Signal, error) {
	in := strings.ToUpper(strings.TrimSpace(s))
	if in == "" {
		return 0, fmt.Errorf("bad signal %q: empty", s)
	}
	if n, err := strconv.Atoi(in); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("bad signal %q: number out of range 1-%d", s, sigRTMax)
		}
		if n > 31 && n < sigRTMin {
			// glibc's own (thread cancellation, setxid): a glibc program
			// drops them when they come from another process, so a stop
			// signal of 32 would only ever end in SIGKILL.
			return 0, fmt.Errorf("bad signal %q: 32 and 33 are reserved by the C library", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(in, "SIG")
	if rt, ok := parseRealTime(name); ok {
		if rt < sigRTMin || rt > sigRTMax {
			return 0, fmt.Errorf("bad signal %q: real-time signal out of range", s)
		}
		return syscall.Signal(rt), nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("bad signal %q: unknown name", s)
}

func parseRealTime(name string) (int, bool) {
	for _, base := range []struct {
		prefix string
		at     int
	}{{"RTMIN", sigRTMin}, {"RTMAX", sigRTMax}} {
		rest, ok := strings.CutPrefix(name, base.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return base.at, true
		}
		n, err := strconv.Atoi(rest) // "+3" and "-1" both parse
		if err != nil {
			return -1, true
		}
		return base.at + n, true
	}
	return 0, false
}

// SignalMap rewrites forwarded signals (--signal-map FROM:TO).
type SignalMap map[syscall.Signal]syscall.Signal

// ParseSignalMap parses "FROM:TO" entries such as "TERM:QUIT" or "15:3".
func ParseSignalMap(entries []string) (SignalMap, error) {
	return parseMap[SignalMap](entries, "signal map", ParseSignal)
}

// Map returns the signal sig is rewritten to, or sig itself.
func (m SignalMap) Map(sig syscall.Signal) syscall.Signal {
	if to, ok := m[sig]; ok {
		return to
	}
	return sig
}

// ExitCodeMap rewrites the child's exit code (--exit-code-map FROM:TO), e.g.
// the JVM's 143 after SIGTERM to 0.
type ExitCodeMap map[int]int

// ParseExitCodeMap parses "FROM:TO" entries of codes 0-255.
func ParseExitCodeMap(entries []string) (ExitCodeMap, error) {
	return parseMap[ExitCodeMap](entries, "exit code map", parseCode)
}

// parseMap parses "FROM:TO" entries, each side with parse; what names the
// map in its errors.
func parseMap[M ~map[K]K, K comparable](entries []string, what string, parse func(string) (K, error)) (M, error) {
	m := M{}
	for _, e := range entries {
		from, to, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("bad %s %q: want FROM:TO", what, e)
		}
		f, err := parse(from)
		if err != nil {
			return nil, fmt.Errorf("bad %s %q: %w", what, e, err)
		}
		t, err := parse(to)
		if err != nil {
			return nil, fmt.Errorf("bad %s %q: %w", what, e, err)
		}
		m[f] = t
	}
	return m, nil
}

func parseCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("exit code %q is not a number 0-255", s)
	}
	return n, nil
}

// Map returns the code code is rewritten to, or code itself.
func (m ExitCodeMap) Map(code int) int {
	if to, ok := m[code]; ok {
		return to
	}
	return code
}

// ExitCode turns a wait status into a shell-style exit code: the exit status,
// or 128+N for a child killed by signal N.
func ExitCode(ws unix.WaitStatus) int { return exitCode(ws) }

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
