package probes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/supervisor"
)

// maxExecOutput is how much of a command's output is kept for the reason it
// failed: enough for an error line, little enough for /readyz and logs.
const maxExecOutput = 512

// execOutputGrace bounds the wait for a command's output after its process
// group is gone. Only a descendant that left the group (setsid) can still hold
// the pipe open, and the probe must not wait for it.
const execOutputGrace = 100 * time.Millisecond

// checkExec is up when Command exits 0. The command runs in a process group of
// its own so that at the deadline the whole group is killed, not just the
// shell: `sh -c 'slow-check'` would otherwise leave slow-check running, one
// more each period. The group is also killed after the command exits, so
// nothing a probe started in the background outlives it.
func checkExec(ctx context.Context, t Target, opts Options) error {
	if len(t.Command) == 0 {
		return errors.New("no command")
	}
	if opts.Commands == nil {
		return errors.New("exec targets need the reaper (Options.Commands)")
	}
	res, err := opts.Commands.RunCommand(ctx, t.Command, supervisor.CommandOptions{
		MaxOutput:     maxExecOutput,
		OutputGrace:   execOutputGrace,
		KillLeftovers: true,
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("start %s: %w", t.Command[0], err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("command killed at the deadline: %w", ctx.Err())
	}
	if code := supervisor.ExitCode(res.Status); code != 0 {
		reason := fmt.Sprintf("exit status %d", code)
		if res.Status.Signaled() {
			reason = "killed by " + supervisor.SignalName(res.Status.Signal())
		}
		if text := oneLine(res.Output); text != "" {
			return fmt.Errorf("%s: %s", reason, text)
		}
		return errors.New(reason)
	}
	return nil
}

// oneLine folds output onto one line, because it ends up in one-line places:
// /readyz?verbose, log fields, the termination message.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
