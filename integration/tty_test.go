package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// console is the master side of a pseudo-terminal with everything read
// from it kept, so a test can type and wait for output.
type console struct {
	ptmx *os.File

	mu   sync.Mutex
	out  strings.Builder
	seen int // expect looks only after the end of its last match
}

// newConsole opens a pseudo-terminal and returns its master side and the
// terminal (the slave) to run a program on.
func newConsole(t *testing.T) (*console, *os.File) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 200}))
	c := &console{ptmx: ptmx}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = ptmx.Close() })
	return c, tty
}

// send types s.
func (c *console) send(t *testing.T, s string) {
	t.Helper()
	_, err := c.ptmx.WriteString(s)
	require.NoError(t, err)
}

// expect waits until the output after the previous match matches re and
// returns the submatches.
func (c *console) expect(t *testing.T, ctx context.Context, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	err := poll(ctx, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		rest := c.out.String()[c.seen:]
		if loc := rx.FindStringSubmatchIndex(rest); loc != nil {
			m = make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = rest[loc[2*i]:loc[2*i+1]]
				}
			}
			c.seen += loc[1]
			return true
		}
		return false
	})
	if err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		require.FailNow(t, "terminal output", "no match for %q in %q: %v", re, c.out.String()[c.seen:], err)
	}
	return m
}

// bashEnv makes an interactive bash quiet and predictable.
var bashEnv = []string{"TERM=dumb", "PS1=$ ", "HISTFILE=/dev/null", "BASH_SILENCE_DEPRECATION_WARNING=1"}

// TestTTY: lifecycled on a terminal hands it over as it is: the child's
// process group becomes the terminal's foreground group, job control works
// (background jobs, fg, ^C to a foreground job that bash survives), stdin,
// stdout and stderr are still the terminal, and the exit code comes
// through.
//
// Every command prints a marker computed by the shell ($((...))), so the
// terminal's echo of the typed command never matches.
func TestTTY(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 30*time.Second)
		con, tty := newConsole(t)
		p := start(t, options{mode: m, tty: tty, env: bashEnv}, "--", "bash", "--norc", "--noprofile", "--noediting", "-i")
		require.NotNil(t, p)
		require.NoError(t, tty.Close()) // the child has it now

		con.send(t, "tty; echo \"A-$((20+1))\"\n")
		got := con.expect(t, ctx, `(/dev/pts/\d+)\r?\nA-21`)
		assert.Regexp(t, `^/dev/pts/\d+$`, got[1], "a TTY stays a TTY")

		con.send(t, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo \"B-$((20+2))\"\n")
		con.expect(t, ctx, `B-22`)

		// Fields 5 and 8 of /proc/PID/stat: process group and the
		// terminal's foreground process group.
		con.send(t, "read -r _ _ _ _ pg _ _ tp _ < /proc/$$/stat; echo \"C-$((pg == $$))-$((tp == pg))-$((20+3))\"\n")
		assert.Equal(t, []string{"C-1-1-23", "1", "1"}, con.expect(t, ctx, `C-(\d)-(\d)-23`),
			"bash leads its own process group, and it is the terminal's foreground group")

		// The child's group is not lifecycled's.
		lpid, err := p.lifecycledPid(ctx)
		require.NoError(t, err)
		lst, err := readStat(lpid)
		require.NoError(t, err)
		var bash procStat
		for _, s := range childrenOf(lpid) {
			if s.comm == "bash" {
				bash = s
			}
		}
		require.NotZero(t, bash.pid, "bash is lifecycled's child")
		assert.NotEqual(t, lst.pgrp, bash.pgrp)
		assert.Equal(t, bash.pgrp, bash.tpgid)

		// Job control: a background job, jobs, kill %1.
		con.send(t, "sleep 100 &\n")
		con.send(t, "jobs; echo \"D-$((20+4))\"\n")
		con.expect(t, ctx, `\[1\]\+\s+Running\s+sleep 100 &\r?\n(.*\r?\n)?D-24`)
		con.send(t, "kill %1; wait; echo \"E-$((20+5))\"\n")
		con.expect(t, ctx, `E-25`)

		// fg: bash gives the terminal to the job and takes it back.
		con.send(t, "sleep 0.3 & fg; echo \"F-$?-$((20+6))\"\n")
		con.expect(t, ctx, `F-0-26`)

		// ^C goes to the foreground job only: lifecycled would start its
		// stop sequence if it got SIGINT, and bash would die without job
		// control.
		con.send(t, "sleep 100\n")
		var sleeper procStat
		require.NoError(t, poll(ctx, func() bool {
			for _, s := range sessionProcs(p.cmd.Process.Pid) {
				if s.comm == "sleep" && s.tpgid == s.pgrp {
					sleeper = s
					return true
				}
			}
			return false
		}), "sleep 100 runs as the foreground job")
		assert.NotEqual(t, bash.pgrp, sleeper.pgrp, "the job has a process group of its own")
		con.send(t, "\x03")
		require.NoError(t, poll(ctx, func() bool { return gone(sleeper.pid) }))
		con.send(t, "echo \"G-$?-$((20+7))\"\n")
		con.expect(t, ctx, `G-130-27`)

		con.send(t, "exit 3\n")
		r := p.wait(ctx)
		assert.Equal(t, 3, r.code)
	})
}

// TestTTYBackgroundJob: lifecycled started as a background job of an
// interactive shell does not take the terminal from it: its child runs in
// the background and the shell stays the foreground group.
func TestTTYBackgroundJob(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	con, tty := newConsole(t)
	dir := t.TempDir()
	cmd := exec.Command("bash", "--norc", "--noprofile", "--noediting", "-i")
	cmd.Dir, cmd.Env = dir, testEnv(bashEnv)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	require.NoError(t, cmd.Start())
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		killSession(cmd.Process.Pid)
		<-done
	})
	require.NoError(t, tty.Close())

	con.send(t, fmt.Sprintf("%s --log-level error -- sh -c ': > started; exec sleep 100' &\n", lifecycledBin(t)))
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "started")))
	con.send(t, "read -r _ _ _ _ pg _ _ tp _ < /proc/$$/stat; echo \"H-$((tp == $$))-$((30+1))\"\n")
	assert.Equal(t, []string{"H-1-31", "1"}, con.expect(t, ctx, `H-(\d)-31`), "the shell keeps the terminal")

	// kill %1 sends SIGTERM to the job: lifecycled stops its child.
	con.send(t, "kill %1; wait; echo \"I-$((30+2))\"\n")
	con.expect(t, ctx, `I-32`)
	con.send(t, "exit 0\n")
	select {
	case <-done:
		assert.NoError(t, waitErr)
	case <-ctx.Done():
		t.Fatal("bash did not exit")
	}
}
