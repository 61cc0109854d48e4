package supervisor

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// checkOneLineNaming fails the test unless err is one line that names in the
// way the user typed it (quoted, as every parser here quotes its input).
func checkOneLineNaming(t *testing.T, err error, in string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error for %q is not one line: %q", in, msg)
	}
	if !strings.Contains(msg, strconv.Quote(in)) {
		t.Fatalf("error for %q does not name the input: %q", in, msg)
	}
}

// checkOneLineNamingEntry fails the test unless err, for the list in made
// of entries, is one line that names one of the entries as the user typed
// it (quoted).
func checkOneLineNamingEntry(t *testing.T, err error, in string, entries []string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error for %q is not one line: %q", in, msg)
	}
	for _, e := range entries {
		if strings.Contains(msg, strconv.Quote(e)) {
			return
		}
	}
	t.Fatalf("error for %q names no entry: %q", in, msg)
}

// FuzzParseSignal: whatever --stop-signal or a --signal-map side says, a
// signal that parses is a real signal (1-64, not one of the C library's own),
// its conventional name parses back to it, and so does its number; anything
// else is a one-line error naming the input.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		"TERM", "SIGTERM", "sigterm", " 15 ", "9", "0", "65", "-1", "RTMIN", "RTMIN+3",
		"SIGRTMAX-1", "RTMAX+1", "RTMIN-1", "rtmin+", "SIGSIGTERM", "IOT", "32", "33",
		"signal 32", "", "\n", "+15", "0x0f", "SIG", "RTMIN+9223372036854775807",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sig, err := ParseSignal(in)
		if err != nil {
			checkOneLineNaming(t, err, in)
			return
		}
		if sig < 1 || sig > sigRTMax {
			t.Fatalf("ParseSignal(%q) = %d, out of 1-%d", in, sig, sigRTMax)
		}
		name := SignalName(sig)
		back, err := ParseSignal(name)
		if err != nil || back != sig {
			t.Fatalf("ParseSignal(%q) = %d named %q, which parses to %d, %v", in, sig, name, back, err)
		}
		if n, err := ParseSignal(strconv.Itoa(int(sig))); err != nil || n != sig {
			t.Fatalf("ParseSignal(%q) = %d, but its number parses to %d, %v", in, sig, n, err)
		}
		if !strings.HasPrefix(name, "SIG") {
			t.Fatalf("SignalName(%d) = %q, want a SIG... name", sig, name)
		}
	})
}

// fuzzFromTo fuzzes a parser of FROM:TO entries (comma-separated here,
// as from a LIFECYCLED_ variable) from seeds: a bad entry fails with one
// line naming it, each entry makes at most one mapping, and check says the
// rest.
func fuzzFromTo[M ~map[K]V, K comparable, V any](f *testing.F, seeds []string, parse func([]string) (M, error),
	check func(t *testing.T, in string, entries []string, m M)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		entries := strings.Split(in, ",")
		m, err := parse(entries)
		if err != nil {
			checkOneLineNamingEntry(t, err, in, entries)
			return
		}
		if len(m) > len(entries) {
			t.Fatalf("%d entries made %d mappings", len(entries), len(m))
		}
		check(t, in, entries, m)
	})
}

// FuzzParseSignalMap: --signal-map entries (comma-separated here, as from
// LIFECYCLED_SIGNAL_MAP) parse into a map of real signals with one entry per
// distinct FROM, or fail with one line naming the bad entry.
func FuzzParseSignalMap(f *testing.F) {
	fuzzFromTo(f, []string{
		"TERM:QUIT", "15:3", "WINCH:USR1,USR1:USR2", "TERM", ":", "TERM:", ":QUIT",
		"RTMIN+1:RTMAX", "TERM:QUIT:HUP", "a:b,c:d", "9:9", "TERM:QUIT,TERM:HUP",
	}, ParseSignalMap, func(t *testing.T, in string, entries []string, m SignalMap) {
		for from, to := range m {
			for _, s := range []syscall.Signal{from, to} {
				if s < 1 || s > sigRTMax {
					t.Fatalf("ParseSignalMap(%q) maps %d to %d: out of range", in, from, to)
				}
			}
			if got := m.Map(from); got != to {
				t.Fatalf("Map(%d) = %d, want %d", from, got, to)
			}
		}
		// The last entry for a FROM wins, as a repeated flag would.
		last := entries[len(entries)-1]
		from, to, _ := strings.Cut(last, ":")
		fromSig, _ := ParseSignal(from)
		want, _ := ParseSignal(to)
		if got := m.Map(fromSig); got != want {
			t.Fatalf("last entry %q: Map(%d) = %d, want %d", last, fromSig, got, want)
		}
	})
}

// FuzzParseExitCodeMap: --exit-code-map entries parse into codes 0-255, or
// fail with one line naming the bad entry.
func FuzzParseExitCodeMap(f *testing.F) {
	fuzzFromTo(f, []string{
		"143:0", "1:0,2:0", "256:0", "-1:0", "0:255", " 143 : 0 ", "143", "+1:0",
		"1:2:3", "0x10:0", "99999999999999999999:0",
	}, ParseExitCodeMap, func(t *testing.T, in string, entries []string, m ExitCodeMap) {
		for from, to := range m {
			if from < 0 || from > 255 || to < 0 || to > 255 {
				t.Fatalf("ParseExitCodeMap(%q) maps %d to %d: out of 0-255", in, from, to)
			}
		}
		for code := range 256 {
			if got := m.Map(code); got < 0 || got > 255 {
				t.Fatalf("Map(%d) = %d", code, got)
			}
		}
	})
}
