package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
	"github.com/lifecycled/lifecycled/podspec"
	"github.com/lifecycled/lifecycled/podspec/explain"
	"github.com/lifecycled/lifecycled/settings"
)

// explainMain is `lifecycled explain [FLAGS] [-- COMMAND]`: it prints the
// configuration as it will run and the stop timeline, and checks the
// timeline against --termination-grace-period. Exit 0 when it fits (or
// nothing was given to check against), 1 when it does not, 2 on bad flags.
func explainMain(args []string, stdout, stderr io.Writer) int {
	if isExplainFile(args) {
		return explainFileMain(args, os.Stdin, stdout, stderr)
	}
	s, err := settings.Load(args, os.Getenv, settings.ReadFile)
	if errors.Is(err, settings.ErrHelp) {
		settings.PrintUsage(stdout)
		explain.PrintFileUsage(stdout)
		return exitOK
	}
	// An unknown LIFECYCLED_ variable makes the run exit 2: explain says
	// so rather than print a timeline the run would not follow.
	if err := settings.CheckEnv(os.Environ()); err != nil {
		return usageError(stderr, "explain: %v", err)
	}
	if err != nil {
		return usageError(stderr, "explain: %v", err)
	}
	if len(s.Command) == 0 {
		s.Command = []string{"COMMAND"} // explain needs no command to run
	}
	run, err := s.Validate()
	if err != nil {
		return usageError(stderr, "explain: %v", err)
	}
	ver, _ := buildVersion()
	return explain.NewWriter(stdout, ver).Run(run)
}

// isExplainFile reports whether explain's arguments ask for -f FILE; the
// flags after `--` are a command's, not explain's.
func isExplainFile(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "f" || name == "filename") {
			return true
		}
	}
	return false
}

// explainFileMain is `lifecycled explain -f FILE [--image IMAGE]...`: it
// prints the timeline of every container of the manifest that runs
// lifecycled, then one line per problem podspec.Check finds. Exit 0 when
// there is none, 1 when there are, 2 when FILE cannot be read or is not a
// manifest.
func explainFileMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var file string
	var images []string
	fs := flag.NewFlagSet("lifecycled explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&file, "f", "", "")
	fs.StringVar(&file, "filename", "", "")
	fs.Func("image", "", func(s string) error { images = append(images, s); return nil })
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			explain.PrintFileUsage(stdout)
			return exitOK
		}
		return usageError(stderr, "explain -f: %v (with -f, the settings come from the manifest: only --image may go with it)", err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "explain -f: unexpected %q (with -f, the settings and the command come from the manifest)", fs.Arg(0))
	}
	name, data, err := readManifest(file, stdin)
	if err != nil {
		return usageError(stderr, "explain -f: %v", err)
	}
	workloads, err := podspec.Decode(data)
	if err != nil {
		return usageError(stderr, "explain -f %s: %v", name, settings.YAMLError(firstYAMLError(err), data))
	}
	if len(workloads) == 0 {
		return usageError(stderr, "explain -f %s: no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob in it", name)
	}
	ver, _ := buildVersion()
	return explain.NewWriter(stdout, ver).File(name, workloads, images)
}

// firstYAMLError keeps the first of the YAML library's errors about values
// of the wrong shape (two documents run together, for one, repeat every
// key, and the one line would have no end), without the Go type it names.
func firstYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return err
	}
	msg, _, cut := strings.Cut(te.Errors[0], " into ")
	if cut {
		msg += ": not the kind of value this field takes"
	}
	if n := len(te.Errors) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return errors.New(msg)
}

// readManifest reads FILE, or stdin for "-", up to yamlnode.MaxBytes.
func readManifest(file string, stdin io.Reader) (string, []byte, error) {
	if file == "" {
		return "", nil, errors.New("-f needs a FILE (or - for stdin)")
	}
	if file == "-" {
		data, err := yamlnode.Read(stdin)
		if err != nil {
			return "", nil, fmt.Errorf("stdin: %w", err)
		}
		return "stdin", data, nil
	}
	data, err := settings.ReadFile(file)
	return file, data, err
}
