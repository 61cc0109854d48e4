package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
	"github.com/lifecycled/lifecycled/podspec"
)

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
	fs.Var((*listValue)(&images), "image", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printExplainFileUsage(stdout)
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
		return usageError(stderr, "explain -f %s: %v", name, yamlError(firstYAMLError(err), data))
	}
	if len(workloads) == 0 {
		return usageError(stderr, "explain -f %s: no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob in it", name)
	}
	w := &explainWriter{w: stdout}
	var problems []string
	checked := 0
	for i := range workloads {
		wl := &workloads[i]
		configs := map[string]*runConfig{}
		report := podspec.Check(wl, images, func(inv podspec.Invocation) (podspec.Settings, error) {
			cfg, s, err := containerSettings(inv)
			if err == nil {
				configs[inv.Container] = cfg
			}
			return s, err
		})
		explainWorkload(w, name, wl, images, report, configs)
		checked += len(report.Lifecycled)
		for _, p := range report.Problems {
			where := wl.String()
			if p.Container != "" {
				where += " container " + p.Container
			}
			problems = append(problems, sprintfLine("%s: %s: %s", name, where, p.Text))
		}
	}
	if checked == 0 {
		problems = append(problems, sprintfLine("%s: no container runs lifecycled: its command[0] must be lifecycled, or its image one given with --image IMAGE (an image whose ENTRYPOINT is lifecycled)", name))
	}
	if len(problems) == 0 {
		w.line("No problems found.")
		return exitOK
	}
	w.line("Problems:")
	for _, p := range problems {
		fmt.Fprint(stdout, p)
	}
	return 1
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
	data, err := readFileBounded(file)
	return file, data, err
}

// containerSettings reads a container's lifecycled arguments, environment
// and --config file with the run path's own loader. The file comes from the
// manifest's ConfigMap mounted there; when the manifest has none, the
// settings leave it out (podspec reports it).
func containerSettings(inv podspec.Invocation) (*runConfig, podspec.Settings, error) {
	unseen := ""
	opts, err := loadSettings(inv.Args, inv.Getenv, inv.ReadFile)
	if errors.Is(err, podspec.ErrNotInManifest) {
		opts, _, err = parseSettings(inv.Args, inv.Getenv)
		unseen = opts.Config
	}
	if isHelp(err) {
		return nil, podspec.Settings{}, errors.New("--help: lifecycled would print its help and exit")
	}
	if err != nil {
		return nil, podspec.Settings{}, err
	}
	cfg, err := newRunConfig(opts)
	if err != nil {
		return nil, podspec.Settings{}, err
	}
	s := podspec.Settings{
		Name:           cfg.name,
		Listen:         cfg.listen,
		AdminListen:    cfg.adminListen,
		TerminationLog: cfg.terminationLog,

		TerminationLogTail: cfg.terminationLogTail,
		TerminationLogMax:  cfg.terminationLogMax,
		TombstoneDir:       cfg.tombstoneDir,
		HookLogDir:         cfg.hookLogDir,
		ExitWith:           cfg.exitWith,
		Stop:               cfg.budget(),
		UnseenConfig:       unseen,
		Ready:              opts.Ready.Target.Raw,
		TracksStartup:      len(cfg.waits) > 0 || cfg.ready != nil || cfg.postStart != nil,
	}
	return cfg, s, nil
}

// explainWorkload prints, for each container of wl that runs lifecycled,
// the timeline `lifecycled explain` prints for its flags, against the time
// the kubelet really leaves it.
func explainWorkload(w *explainWriter, file string, wl *podspec.Workload, images []string, r podspec.Report, configs map[string]*runConfig) {
	tgp := wl.Spec.TerminationGracePeriod()
	for _, ch := range r.Lifecycled {
		c := ch.Container
		kind := "container"
		switch {
		case ch.Sidecar:
			kind = "native sidecar"
		case ch.Init:
			kind = "init container"
		}
		w.line("=== %s: %s %s %s (terminationGracePeriodSeconds %s)", file, wl, kind, c.Name, fmtSeconds(tgp))
		cfg := configs[c.Name]
		if cfg == nil {
			w.line("  lifecycled would refuse its arguments: see Problems below.")
			w.line("")
			continue
		}
		st := ch.Stop
		if len(st.Because) > 0 {
			w.line("The kubelet's SIGTERM comes %s into the pod's termination (%s); lifecycled then has %s until the kubelet's SIGKILL. Times below count from that SIGTERM.",
				fmtSeconds(st.SIGTERM), strings.Join(st.Because, "; "), fmtSeconds(st.Grace))
		}
		cfg.terminationGrace = st.Grace
		w.startup(cfg)
		w.shutdown(cfg)
		if st.Grace == tgp {
			w.budget(cfg)
		} else if err := cfg.budget().Check(); err != nil {
			w.line("Budget: DOES NOT FIT in the %s the kubelet leaves lifecycled: %v", fmtSeconds(st.Grace), err)
		} else {
			w.line("Budget: fits in the %s the kubelet leaves lifecycled.", fmtSeconds(st.Grace))
		}
		w.line("")
	}
	var others []string
	for _, c := range append(append([]podspec.Container(nil), wl.Spec.InitContainers...), wl.Spec.Containers...) {
		if inv, ok := c.Lifecycled(images); ok && inv.Subcommand != "run" {
			others = append(others, fmt.Sprintf("%s (lifecycled %s)", c.Name, inv.Subcommand))
			continue
		}
		if !slices.ContainsFunc(r.Lifecycled, func(ch podspec.Checked) bool { return ch.Container.Name == c.Name }) {
			others = append(others, c.Name)
		}
	}
	if len(others) > 0 {
		w.line("=== %s: %s: not checked (no `lifecycled run` in command or --image): %s", file, wl, strings.Join(others, ", "))
		w.line("")
	}
}

// printExplainFileUsage documents explain -f for `lifecycled explain
// --help`.
func printExplainFileUsage(w io.Writer) {
	fmt.Fprint(w, `
lifecycled explain -f FILE [--image IMAGE]...
  Check the Kubernetes manifest FILE (- for stdin; multi-document YAML and
  Lists; Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob).
  For every container that runs lifecycled it prints the timeline above, as
  the kubelet will run it, then one line per problem:
    FILE: Kind/name container C: problem
  Checked: the stop sequence against terminationGracePeriodSeconds (default
  30s), after the kubelet's own preStop hook and, for native sidecars, after
  the containers they wait for, with the kubelet's 2s minimum; probes against
  the --listen port and paths (/readyz, /livez, /startupz); a readinessProbe
  when --listen is set; a --drain-delay (or a kubelet preStop sleep) when there
  is a readinessProbe; --termination-log against terminationMessagePath;
  --exit-with names against the tombstones of the pod's containers on a shared
  volume; lifecycle.stopSignal; ports taken twice; --ready on lifecycled's own
  port; a native sidecar's startupProbe; --termination-log-max against the
  kubelet's 12288 / (containers + init containers), with
  --termination-log-tail; --exit-with under restartPolicy OnFailure (make
  it a native sidecar); lifecycled's arguments, literal LIFECYCLED_* env
  and --config file (from a ConfigMap of FILE mounted there), read as run
  reads them. FILE is read up to 1 MiB and 1,000 documents; a key given
  twice in one mapping, or $(VAR) references expanding past 128 KiB, make
  it a bad FILE.
  A container runs lifecycled when command[0] is lifecycled (any directory),
  or when it has no command and its image is given with --image: an image's
  ENTRYPOINT is not in the manifest.
  --image IMAGE   an image whose ENTRYPOINT is lifecycled (repeatable); without
                  a tag or digest, every tag of that repository
  Exit: 0 no problem, 1 problems, 2 FILE unreadable or not a manifest.
`)
}
