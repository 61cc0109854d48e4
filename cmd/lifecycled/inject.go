package main

import "io"

func injectMain(args []string, stdin io.Reader, stdout, stderr io.Writer, uninject bool) int {
	return usageError(stderr, "inject: not yet")
}
