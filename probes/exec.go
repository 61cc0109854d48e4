package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
func checkExec(ctx context.Context, t Target, _ Options) error {
	if len(t.Command) == 0 {
		return errors.New("no command")
	}
	// The output goes through a pipe we own (an *os.File, so os/exec adds no
	// copying goroutine whose Wait would block on a background child holding
	// the pipe).
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create output pipe: %w", err)
	}
	defer r.Close()

	cmd := exec.CommandContext(ctx, t.Command[0], t.Command[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	err = cmd.Start()
	w.Close() // the child has its copy; ours would keep the pipe open forever
	if err != nil {
		return fmt.Errorf("start %s: %w", t.Command[0], err)
	}

	output := make(chan []byte, 1)
	go func() { output <- readAtMost(r, maxExecOutput) }()

	waitErr := cmd.Wait()
	// The leader is reaped; its pgid cannot be reused while members remain,
	// so this reaches only what the command left behind.
	_ = killGroup(cmd.Process.Pid)

	var out []byte
	select {
	case out = <-output:
	case <-time.After(execOutputGrace):
		r.Close() // unblocks the reader
		out = <-output
	}

	if ctxErr := ctx.Err(); ctxErr != nil && waitErr != nil {
		return fmt.Errorf("command killed at the deadline: %w", ctxErr)
	}
	if waitErr != nil {
		if text := oneLine(out); text != "" {
			return fmt.Errorf("%w: %s", waitErr, text)
		}
		return waitErr
	}
	return nil
}

// killGroup sends SIGKILL to the process group pgid. A group already gone is
// not an error: that is the state wanted.
func killGroup(pgid int) error {
	if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	return nil
}

// readAtMost returns the first n bytes read from r and discards the rest
// until EOF or an error, so the writer never blocks on a full pipe.
func readAtMost(r io.Reader, n int64) []byte {
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, io.LimitReader(r, n))
	_, _ = io.Copy(io.Discard, r)
	return buf.Bytes()
}

// oneLine folds output onto one line, because it ends up in one-line places:
// /readyz?verbose, log fields, the termination message.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
