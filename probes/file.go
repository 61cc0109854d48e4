package probes

import (
	"context"
	"os"
)

// checkFile is up when Path exists (a symbolic link counts when its target
// exists). The stat runs in its own goroutine because a stat on a hung network
// file system can block in the kernel far beyond any deadline; the goroutine
// then ends whenever the kernel lets it, but Check returns at ctx's deadline.
func checkFile(ctx context.Context, t Target, _ Options) error {
	done := make(chan error, 1) // buffered: a late stat must not block forever
	go func() {
		_, err := os.Stat(t.Path)
		done <- err
	}()
	select {
	case err := <-done:
		return err // a *fs.PathError names the path
	case <-ctx.Done():
		return ctx.Err()
	}
}
