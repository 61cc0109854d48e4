package main

import "io"

func explainMain(args []string, stdout, stderr io.Writer) int {
	return usageError(stderr, "explain: not built yet")
}
