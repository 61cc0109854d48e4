package settings

import (
	"fmt"
	"io"
	"strings"
)

// PrintUsage writes --help: the commands, then every flag with its
// environment variable.
func PrintUsage(w io.Writer) {
	fmt.Fprint(w, `lifecycled makes containers start and stop gracefully.

Usage:
  lifecycled [FLAGS] -- COMMAND [ARG...]   supervise COMMAND (also: lifecycled run ...)
  lifecycled wait [FLAGS] TARGET...        block until every TARGET is up (exit 0, 124 on timeout)
  lifecycled probe [FLAGS] TARGET          check TARGET once (exit 0 up, 1 down)
  lifecycled sleep DURATION                sleep, then exit 0 (a preStop hook without /bin/sleep)
  lifecycled explain [FLAGS] [-- COMMAND]  print the startup and shutdown timeline and budget check
  lifecycled explain -f FILE [--image IMG] check the lifecycled containers of a Kubernetes manifest
  lifecycled inject -f FILE [FLAGS]        print FILE with lifecycled put into its workloads (inject --help)
  lifecycled uninject -f FILE              print FILE with what inject did undone (also inject --uninject)
  lifecycled install DIR                   copy this binary to DIR/lifecycled (the injected init container)
  lifecycled version                       print version, commit, Go version

TARGET: tcp://HOST:PORT  http(s)://HOST[:PORT]/PATH  unix:///PATH  file:///PATH
        dns://NAME  grpc://HOST:PORT[/SERVICE]  exec:COMMAND (--ready only)

Exit codes: the child's code; 128+N if killed by signal N; 2 usage error;
124 dependency timeout; 125 postStart failed; 126 not executable; 127 not found.

Flags (each also as environment variable LIFECYCLED_<FLAG>, e.g. LIFECYCLED_DRAIN_DELAY=5s;
repeatable flags take comma-separated values there). Precedence: flag > env > --config > default.
`)
	printFlags(w, new(Settings).declare())
}

// printFlags lists every flag as --name ARG, its meaning, default, config
// file key and environment variable.
func printFlags(w io.Writer, decls []setting) {
	for i := range decls {
		d := &decls[i]
		if d.name == "" {
			continue
		}
		def := ""
		if d.def != "" && d.def != "0" && d.def != "0s" {
			def = " (default " + d.def + ")"
		}
		key := ""
		if len(d.yaml) > 0 {
			key = ", " + d.yaml[0]
		}
		arg := ""
		if d.arg != "" {
			arg = " " + d.arg
		}
		fmt.Fprintf(w, "  --%s%s\n        %s%s [%s%s]\n", d.name, arg, strings.ReplaceAll(d.help, "`", ""), def, d.envVar(), key)
	}
}

// subcommands are lifecycled's subcommands by the first argument, with
// the aliases of help and version; any other first argument is run's own
// flags and command (`lifecycled --wait ... -- app`).
var subcommands = map[string]string{
	"run": "run", "wait": "wait", "probe": "probe", "sleep": "sleep", "explain": "explain",
	"install": "install", "inject": "inject", "uninject": "uninject",
	"help": "help", "-h": "help", "-help": "help", "--help": "help",
	"version": "version", "-version": "version", "--version": "version",
}

// Subcommand is the subcommand arg names (help for --help, version for
// --version), or "" if it names none: the one list, for main's dispatch
// and for explain -f reading a container's command.
func Subcommand(arg string) string {
	return subcommands[arg]
}
