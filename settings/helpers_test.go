package settings

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes as cmd/lifecycled returns them.
const (
	exitOK    = 0
	exitUsage = 2
)

// loadRunConfig is run's reading of its settings, as cmd/lifecycled does
// it: flags, environment (an unknown LIFECYCLED_ variable named first) and
// file, then Validate; a usage error is one line on stderr and exit 2.
func loadRunConfig(args []string, environ []string, stdout, stderr io.Writer) (*Run, int, bool) {
	s, err := Load(args, LookupEnv(environ), ReadFile)
	if errors.Is(err, ErrHelp) {
		PrintUsage(stdout)
		return nil, exitOK, false
	}
	if err == nil {
		err = CheckEnv(environ)
	}
	var run *Run
	if err == nil {
		run, err = s.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "lifecycled: %v (see lifecycled --help)\n", err)
		return nil, exitUsage, false
	}
	return run, exitOK, true
}
