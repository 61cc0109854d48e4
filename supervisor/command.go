package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ParseCommand reads a command in Dockerfile style, for hooks and exec
// probes: a JSON array of strings is exec form; anything else runs as
// /bin/sh -c s, and shell says so. As Docker does, only valid JSON counts as
// exec form, so `[ -f /tmp/ready ]` is a shell test; a valid JSON array that
// is empty or not all strings is an error, since it can only be a mistake.
func ParseCommand(s string) (argv []string, shell bool, err error) {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return nil, false, errors.New("empty command")
	}
	if strings.HasPrefix(trimmed, "[") && json.Valid([]byte(trimmed)) {
		// The array may span lines; errors are one line, so they show it
		// compacted.
		var compact bytes.Buffer
		_ = json.Compact(&compact, []byte(trimmed))
		if err := json.Unmarshal([]byte(trimmed), &argv); err != nil {
			return nil, false, fmt.Errorf("command %s: exec form must be an array of strings", compact.Bytes())
		}
		if len(argv) == 0 {
			return nil, false, fmt.Errorf("command %s: exec form is an empty array", compact.Bytes())
		}
		if argv[0] == "" {
			return nil, false, fmt.Errorf("command %s: exec form has an empty program name", compact.Bytes())
		}
		for _, a := range argv {
			if strings.IndexByte(a, 0) >= 0 {
				return nil, false, fmt.Errorf("command %s: an argument holds a NUL byte, which exec cannot pass", compact.Bytes())
			}
		}
		return argv, false, nil
	}
	if strings.IndexByte(s, 0) >= 0 {
		// Caught here, as a configuration error, rather than as a hook
		// or probe that fails at every run.
		return nil, false, fmt.Errorf("command %q holds a NUL byte, which exec cannot pass", s)
	}
	return []string{"/bin/sh", "-c", s}, true, nil
}

// CommandOptions tune RunCommand.
type CommandOptions struct {
	// MaxOutput is how much of stdout+stderr is kept; the rest is read and
	// dropped so that a chatty command never blocks on a full pipe.
	MaxOutput int
	// OutputGrace is how long the output is still read after the command
	// exited: a background process it left may hold the pipe forever.
	OutputGrace time.Duration
	// KillLeftovers kills what the command left in its process group once
	// it exited (exec probes: one stray process per period adds up).
	// Hooks leave them alone, as the kubelet does.
	KillLeftovers bool
}

// CommandResult is how a command ended.
type CommandResult struct {
	Status unix.WaitStatus
	// Output is the first MaxOutput bytes of stdout and stderr.
	Output []byte
	// OutputBytes is how many bytes the command wrote in all.
	OutputBytes int64
}

// RunCommand runs a short-lived command (a hook, an exec probe) in a process
// group of its own, through the reaper: lifecycled has exactly one waiter,
// so such commands cannot go through os/exec, whose Wait would race the
// reaper for the status. When ctx ends first, the whole group is killed and
// ctx's error is returned with the result.
func (r *Reaper) RunCommand(ctx context.Context, argv []string, opts CommandOptions) (CommandResult, error) {
	var res CommandResult
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("create output pipe: %w", err)
	}
	defer pr.Close()
	child, err := r.Start(Spec{Argv: argv, Stdin: devNull, Stdout: pw, Stderr: pw, ParentDeathSignal: unix.SIGKILL})
	pw.Close() // the child has its copy; ours would hold the pipe open
	if err != nil {
		return res, err
	}

	type read struct {
		b     []byte
		total int64
	}
	output := make(chan read, 1)
	go func() {
		var buf bytes.Buffer
		n, _ := io.Copy(&buf, io.LimitReader(pr, int64(opts.MaxOutput)))
		dropped, _ := io.Copy(io.Discard, pr)
		output <- read{buf.Bytes(), n + dropped}
	}()

	var ctxErr error
	select {
	case <-child.Exited():
	case <-ctx.Done():
		ctxErr = ctx.Err()
		_ = child.Kill()
		<-child.Exited()
	}
	if opts.KillLeftovers || ctxErr != nil {
		_ = child.Kill()
	}
	var out read
	select {
	case out = <-output:
	case <-time.After(opts.OutputGrace):
		pr.Close() // unblocks the reader
		out = <-output
	}
	res.Status, res.Output, res.OutputBytes = child.Status(), out.b, out.total
	return res, ctxErr
}
