package supervisor

import (
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// checkParse checks what a parser returned against its table row: with
// wantErr, an error containing it (true: the caller may check more of
// err); else no error and want.
func checkParse[T any](t *testing.T, got T, err error, want T, wantErr string) bool {
	t.Helper()
	if wantErr != "" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), wantErr)
		return true
	}
	require.NoError(t, err)
	assert.Equal(t, want, got)
	return false
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr string
	}{
		{in: "15", want: unix.SIGTERM},
		{in: " 9 ", want: unix.SIGKILL},
		{in: "TERM", want: unix.SIGTERM},
		{in: "term", want: unix.SIGTERM},
		{in: "SIGTERM", want: unix.SIGTERM},
		{in: "sigquit", want: unix.SIGQUIT},
		{in: "SigUsr1", want: unix.SIGUSR1},
		{in: "WINCH", want: unix.SIGWINCH},
		{in: "RTMIN", want: 34},
		{in: "SIGRTMIN", want: 34},
		{in: "RTMIN+3", want: 37},
		{in: "sigrtmin+3", want: 37},
		{in: "RTMAX", want: 64},
		{in: "SIGRTMAX-1", want: 63},
		{in: "RTMIN+30", want: 64},
		{in: "34", want: 34},
		{in: "64", want: 64},

		{in: "", wantErr: `bad signal "": empty`},
		{in: "   ", wantErr: "empty"},
		{in: "0", wantErr: "out of range"},
		{in: "-1", wantErr: "out of range"},
		{in: "65", wantErr: "out of range"},
		{in: "32", wantErr: "reserved"},
		{in: "33", wantErr: "reserved"},
		{in: "RTMIN-1", wantErr: "real-time signal out of range"},
		{in: "RTMAX+1", wantErr: "real-time signal out of range"},
		{in: "RTMIN+31", wantErr: "real-time signal out of range"},
		{in: "RTMIN+x", wantErr: `bad signal "RTMIN+x"`},
		{in: "NOPE", wantErr: `bad signal "NOPE": unknown name`},
		{in: "SIG", wantErr: "unknown name"},
		{in: "SIGSIGTERM", wantErr: "unknown name"},
		{in: "TERM QUIT", wantErr: "unknown name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if checkParse(t, got, err, tt.want, tt.wantErr) {
				checkOneLineNaming(t, err, tt.in)
			}
		})
	}
}

func TestSignalName(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want string
	}{
		{unix.SIGHUP, "SIGHUP"},
		{unix.SIGTERM, "SIGTERM"},
		{unix.SIGKILL, "SIGKILL"},
		{unix.SIGWINCH, "SIGWINCH"},
		{34, "SIGRTMIN"},
		{35, "SIGRTMIN+1"},
		{64, "SIGRTMIN+30"},
		{32, "signal 32"},
		{99, "signal 99"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, SignalName(tt.sig), "SignalName(%d)", int(tt.sig))
	}
}

// TestSignalNameParsesBack: every signal lifecycled forwards (and the stop
// signal candidates) is named in a form ParseSignal reads back.
func TestSignalNameParsesBack(t *testing.T) {
	for _, sig := range append(ForwardedSignals(), unix.SIGKILL, unix.SIGSTOP, 34) {
		got, err := ParseSignal(SignalName(sig))
		if assert.NoError(t, err, "SignalName(%d) = %q", int(sig), SignalName(sig)) {
			assert.Equal(t, sig, got, "SignalName(%d) = %q", int(sig), SignalName(sig))
		}
	}
}

func TestParseSignalMap(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    SignalMap
		wantErr string
	}{
		{name: "none", in: nil, want: SignalMap{}},
		{name: "names", in: []string{"TERM:QUIT"}, want: SignalMap{unix.SIGTERM: unix.SIGQUIT}},
		{name: "numbers", in: []string{"15:3"}, want: SignalMap{unix.SIGTERM: unix.SIGQUIT}},
		{name: "several and real-time", in: []string{"USR1:USR2", "1:SIGRTMIN+3", "winch:rtmax"},
			want: SignalMap{unix.SIGUSR1: unix.SIGUSR2, unix.SIGHUP: 37, unix.SIGWINCH: 64}},
		{name: "last wins", in: []string{"TERM:QUIT", "TERM:HUP"}, want: SignalMap{unix.SIGTERM: unix.SIGHUP}},
		{name: "no colon", in: []string{"TERM"}, wantErr: `bad signal map "TERM": want FROM:TO`},
		{name: "empty TO", in: []string{"TERM:"}, wantErr: `bad signal map "TERM:"`},
		{name: "empty FROM", in: []string{":QUIT"}, wantErr: `bad signal map ":QUIT"`},
		{name: "bad TO", in: []string{"USR1:NOPE"}, wantErr: `bad signal map "USR1:NOPE": bad signal "NOPE"`},
		{name: "bad second", in: []string{"USR1:USR2", "HUP:99"}, wantErr: `bad signal map "HUP:99"`},
		{name: "three parts", in: []string{"TERM:QUIT:HUP"}, wantErr: `bad signal map "TERM:QUIT:HUP"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignalMap(tt.in)
			if checkParse(t, got, err, tt.want, tt.wantErr) {
				assert.NotContains(t, err.Error(), "\n")
			}
		})
	}
}

func TestSignalMapMap(t *testing.T) {
	m := SignalMap{unix.SIGUSR1: unix.SIGUSR2}
	assert.Equal(t, unix.SIGUSR2, m.Map(unix.SIGUSR1))
	assert.Equal(t, unix.SIGHUP, m.Map(unix.SIGHUP), "unmapped signals pass unchanged")
	assert.Equal(t, unix.SIGHUP, SignalMap(nil).Map(unix.SIGHUP), "a nil map maps nothing")
}

func TestParseExitCodeMap(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    ExitCodeMap
		wantErr string
	}{
		{name: "none", in: nil, want: ExitCodeMap{}},
		{name: "jvm", in: []string{"143:0"}, want: ExitCodeMap{143: 0}},
		{name: "spaces", in: []string{" 143 : 0 "}, want: ExitCodeMap{143: 0}},
		{name: "bounds", in: []string{"0:255", "255:0"}, want: ExitCodeMap{0: 255, 255: 0}},
		{name: "last wins", in: []string{"1:2", "1:3"}, want: ExitCodeMap{1: 3}},
		{name: "no colon", in: []string{"143"}, wantErr: `bad exit code map "143": want FROM:TO`},
		{name: "too big", in: []string{"256:0"}, wantErr: `bad exit code map "256:0": exit code "256" is not a number 0-255`},
		{name: "negative", in: []string{"-1:0"}, wantErr: `exit code "-1"`},
		{name: "bad TO", in: []string{"1:x"}, wantErr: `bad exit code map "1:x": exit code "x"`},
		{name: "hex", in: []string{"0x10:0"}, wantErr: `"0x10"`},
		{name: "three parts", in: []string{"1:2:3"}, wantErr: `bad exit code map "1:2:3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExitCodeMap(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestExitCodeMapMap(t *testing.T) {
	m := ExitCodeMap{143: 0}
	assert.Equal(t, 0, m.Map(143))
	assert.Equal(t, 137, m.Map(137))
	assert.Equal(t, 3, ExitCodeMap(nil).Map(3))
}

func TestExitCode(t *testing.T) {
	// Wait statuses as the kernel encodes them: the exit code in bits
	// 8-15; a terminating signal in bits 0-6, bit 7 for a core dump.
	tests := []struct {
		name string
		ws   unix.WaitStatus
		want int
	}{
		{"exit 0", 0, 0},
		{"exit 3", 3 << 8, 3},
		{"exit 255", 255 << 8, 255},
		{"SIGTERM", unix.WaitStatus(unix.SIGTERM), 143},
		{"SIGKILL", unix.WaitStatus(unix.SIGKILL), 137},
		{"SIGINT", unix.WaitStatus(unix.SIGINT), 130},
		{"SIGSEGV with core", unix.WaitStatus(unix.SIGSEGV) | 0x80, 139},
		{"SIGRTMAX", 64, 192},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ExitCode(tt.ws), tt.name)
	}
}

func TestForwardedSignals(t *testing.T) {
	sigs := ForwardedSignals()

	// The contract's list (section 3), and every real-time signal a Go
	// program can catch.
	must := []syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGALRM, unix.SIGTERM, unix.SIGWINCH, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
		unix.SIGABRT, unix.SIGPIPE, unix.SIGPWR, unix.SIGIO, unix.SIGXCPU}
	for s := syscall.Signal(35); s <= 64; s++ {
		must = append(must, s)
	}
	for _, s := range must {
		assert.Contains(t, sigs, s, "%s must be forwarded", SignalName(s))
	}

	never := map[syscall.Signal]string{
		unix.SIGURG:  "the Go runtime's own preemption signal",
		unix.SIGCHLD: "the reaper's",
		unix.SIGKILL: "cannot be caught",
		unix.SIGSTOP: "cannot be caught",
		unix.SIGPROF: "the Go runtime never delivers it to signal.Notify",
		34:           "the Go runtime never lets a program catch it",
		32:           "glibc's own",
		33:           "glibc's own",
		unix.SIGSEGV: "a crash of lifecycled itself",
		unix.SIGBUS:  "a crash of lifecycled itself",
		unix.SIGFPE:  "a crash of lifecycled itself",
		unix.SIGILL:  "a crash of lifecycled itself",
		unix.SIGTRAP: "a crash of lifecycled itself",
		unix.SIGSYS:  "a crash of lifecycled itself",
	}
	for s, why := range never {
		assert.NotContains(t, sigs, s, "%s must not be forwarded: %s", SignalName(s), why)
	}

	sorted := slices.Clone(sigs)
	slices.Sort(sorted)
	assert.Equal(t, len(sorted), len(slices.Compact(sorted)), "no duplicates")
	assert.Len(t, sigs, 64-len(never), "every other signal 1-64 is forwarded")
}

// TestForwardedSignalsCatchable: a Go program really receives every signal
// of the list through signal.Notify — the list promises nothing the
// runtime keeps for itself (SIGPROF and SIGRTMIN were such promises).
func TestForwardedSignalsCatchable(t *testing.T) {
	sigs := ForwardedSignals()
	ch := make(chan os.Signal, 1)
	var notify []os.Signal
	for _, s := range sigs {
		notify = append(notify, s)
	}
	signal.Notify(ch, notify...)
	defer signal.Stop(ch)
	for _, s := range sigs {
		require.NoError(t, unix.Kill(os.Getpid(), s))
		select {
		case got := <-ch:
			assert.Equal(t, s, got, "sent %s", SignalName(s))
		case <-time.After(10 * time.Second):
			t.Fatalf("%s sent to ourselves never arrived", SignalName(s))
		}
	}
}
