// Command lifecycled makes containers start and stop gracefully: a correct
// PID 1 that waits for dependencies, runs lifecycle hooks with Kubernetes
// semantics, serves health endpoints and drains before it stops the app.
//
// This package only parses flags, environment and configuration and wires
// the actors of the other packages together; behaviour lives in lifecycle/
// and the packages it uses (see ARCHITECTURE.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	// First of lifecycled's own packages to be initialised: it catches
	// signals before the heavy dependencies' init functions run.
	"github.com/lifecycled/lifecycled/internal/earlysignal"

	"github.com/lifecycled/lifecycled/internal/ctxtime"
	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/lifecycle"
	"github.com/lifecycled/lifecycled/settings"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

// Exit codes of the contract (section 2) that are lifecycled's own.
const (
	exitOK          = 0
	exitUsage       = 2
	exitWaitTimeout = lifecycle.ExitWaitTimeout
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch picks the subcommand. Anything that is not a subcommand's name is
// the wrapper's own flags and command: `lifecycled --wait ... -- app`.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runMain(args, stderr)
	}
	switch settings.Subcommand(args[0]) {
	case "run":
		return runMain(args[1:], stderr)
	case "wait":
		return waitMain(args[1:], os.Environ(), stdout, stderr)
	case "probe":
		return probeMain(args[1:], os.Environ(), stdout, stderr)
	case "sleep":
		return sleepMain(args[1:], stderr)
	case "explain":
		return explainMain(args[1:], stdout, stderr)
	case "install":
		return installMain(args[1:], stdout, stderr)
	case "inject":
		return injectMain(args[1:], os.Stdin, stdout, stderr, false)
	case "uninject":
		return injectMain(args[1:], os.Stdin, stdout, stderr, true)
	case "help":
		return helpMain(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	return runMain(args, stderr)
}

// helpMain is `lifecycled help [COMMAND]`: the usage, on stdout, exit 0.
func helpMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "wait":
			return waitMain([]string{"--help"}, os.Environ(), stdout, stderr)
		case "probe":
			return probeMain([]string{"--help"}, os.Environ(), stdout, stderr)
		}
	}
	settings.PrintUsage(stdout)
	return exitOK
}

// newLogger builds lifecycled's own logger. It writes to w (stderr): stdout
// belongs to the child alone.
func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	encCfg := logschema.EncoderConfig()
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("bad --log-format %q: want json or console", format)
	}
	sink := zapcore.Lock(zapcore.AddSync(w))
	// zap reports its own write errors on ErrorOutput, os.Stderr by
	// default: it goes through w as well, so that the stderr guard (internal/stderrguard) sees it.
	// redact.Core: no log line shows the password of a URL (a target, a
	// hook, an error naming either).
	return zap.New(redact.Core(zapcore.NewCore(enc, sink, lvl)), zap.ErrorOutput(sink)).Named("lifecycled"), nil
}

// usageError prints the one-line error of a bad invocation and returns 2.
func usageError(stderr io.Writer, format string, a ...any) int {
	_, _ = io.WriteString(stderr, redact.URLs(fmt.Sprintf("lifecycled: "+format+" (see lifecycled --help)\n", a...)))
	return exitUsage
}

func sleepMain(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "sleep takes one DURATION, e.g. lifecycled sleep 5s")
	}
	d, err := settings.ParseDuration(args[0])
	if err != nil {
		return usageError(stderr, "sleep: %v", err)
	}
	// A signal that ends a sleep(1) ends this one, with the status a shell
	// gives a command killed by it (143 for SIGTERM): the sleep did not run
	// its course, and `lifecycled sleep 5 && next` must not go on. As PID
	// 1, where the kernel would not let the signal kill us, this is the
	// only answer there is.
	ctx, cancel, got := signalContext(context.Background())
	defer cancel()
	if ctxtime.Sleep(ctx, d) != nil {
		return 128 + int(got())
	}
	return exitOK
}

// signalContext returns a context that ends when a signal arrives whose
// default action would end the process, and a function that returns that
// signal (0 while none came). earlysignal catches every signal from the
// first instructions on, so the commands other than run say here what they
// mean: a stop, as for a plain program. Signals whose default is to be
// ignored or to stop the process (CONT, WINCH, TSTP, TTIN, TTOU) are
// ignored: as PID 1 they would be anyway.
func signalContext(parent context.Context) (context.Context, context.CancelFunc, func() syscall.Signal) {
	ctx, cancel := context.WithCancel(parent)
	var got atomic.Int32
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-earlysignal.C():
				sig := s.(syscall.Signal)
				switch sig {
				case syscall.SIGCONT, syscall.SIGWINCH, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
					continue
				}
				got.Store(int32(sig))
				cancel()
				return
			}
		}
	}()
	return ctx, cancel, func() syscall.Signal { return syscall.Signal(got.Load()) }
}

// buildVersion is lifecycled's version and commit: those set with -ldflags
// (make build), else what the Go toolchain recorded: the module version
// (v1.2.3 from go install ...@v1.2.3; a pseudo-version for a plain go build
// in a git checkout) and vcs.revision, "-dirty" when the tree had changes.
var buildVersion = sync.OnceValues(func() (string, string) {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(version, commit, bi)
})

func versionFrom(ver, rev string, bi *debug.BuildInfo) (string, string) {
	if bi == nil {
		return ver, rev
	}
	if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	if rev == "" {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
	}
	return ver, rev
}

func versionString() string {
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("lifecycled %s (commit %s, %s %s/%s)", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
