package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/lifecycled/lifecycled/internal/install"
)

// installMain is `lifecycled install DIR`, the injected init container's
// job: the running binary copied to DIR/lifecycled. Exit 0 when it is
// there, 2 when DIR is missing, not a directory or not writable, 1 when
// the copy fails otherwise (a full volume).
func installMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprintln(stdout, "Usage: lifecycled install DIR\n\nCopies this lifecycled binary to DIR/lifecycled (mode 0755, atomically; a file\nthat is already the same is left alone): the init container `lifecycled inject`\nadds runs it to put lifecycled on the emptyDir the app container runs it from.")
		return exitOK
	}
	if len(args) != 1 || args[0] == "" {
		return usageError(stderr, "install takes one DIR, e.g. lifecycled install /lifecycled-bin")
	}
	r, err := install.Binary("/proc/self/exe", args[0])
	switch {
	case errors.Is(err, install.ErrDir):
		return usageError(stderr, "install: %v", err)
	case err != nil:
		fmt.Fprintf(stderr, "lifecycled: install: %v\n", err)
		return 1
	case r.Unchanged:
		fmt.Fprintf(stdout, "%s: already this binary (%d bytes), left as it is\n", r.Path, r.Size)
	default:
		fmt.Fprintf(stdout, "%s: installed (%d bytes)\n", r.Path, r.Size)
	}
	return exitOK
}
