package main

import "io"

func waitMain(args []string, stderr io.Writer) int  { return usageError(stderr, "wait: not built yet") }
func probeMain(args []string, stderr io.Writer) int { return usageError(stderr, "probe: not built yet") }
func explainMain(args []string, stdout, stderr io.Writer) int {
	return usageError(stderr, "explain: not built yet")
}
