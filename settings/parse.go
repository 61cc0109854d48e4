package settings

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// envVar is the environment variable of d.
func (d *setting) envVar() string {
	if d.env != "" {
		return d.env
	}
	return envName(d.name)
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "LIFECYCLED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// UnsetOwnEnv removes lifecycled's own variables (LIFECYCLED_*) from its
// environment once they are read, so that no process it starts (the
// child, hooks, exec probes) inherits them: a nested lifecycled, or
// `lifecycled wait` in a hook, would otherwise take the outer one's
// settings (LIFECYCLED_LISTEN: "address already in use"). It runs before
// any goroutine that could start a process.
func UnsetOwnEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LIFECYCLED_") {
			_ = os.Unsetenv(k)
		}
	}
}

// ErrHelp is returned for -h, -help and --help.
var ErrHelp = errors.New("help requested")

// oneLine keeps an error on the one line usage errors are printed on:
// flag names and values are typed by users and may hold line breaks.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// parseFlags sets the flags in args and returns their names and the
// arguments after them: after "--", or from the first argument that is not
// a flag. -name and --name, with the value after "=" or in the next
// argument, as Go's flag package reads them.
func parseFlags(decls []setting, args []string) (map[string]bool, []string, error) {
	byName := map[string]*setting{}
	for i := range decls {
		if decls[i].name != "" {
			byName[decls[i].name] = &decls[i]
		}
	}
	given := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return given, args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return given, args[i:], nil
		}
		name := strings.TrimPrefix(a[1:], "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return nil, nil, fmt.Errorf("bad flag syntax: %s", oneLine.Replace(a))
		}
		name, val, hasVal := strings.Cut(name, "=")
		d := byName[name]
		if d == nil {
			if name == "h" || name == "help" {
				return nil, nil, ErrHelp
			}
			return nil, nil, unknownFlag(name, decls)
		}
		switch {
		case hasVal:
		case isBool(d.value):
			val = "true"
		case i+1 < len(args):
			i++
			val = args[i]
		default:
			return nil, nil, fmt.Errorf("--%s needs a value", name)
		}
		if err := d.value.Set(val); err != nil {
			return nil, nil, errors.New(oneLine.Replace(fmt.Sprintf("--%s %q: %v", name, val, err)))
		}
		given[name] = true
	}
	return given, nil, nil
}

// unknownFlag names a flag that does not exist and the closest that does,
// as a typo (--drain-dealy) is the usual cause.
func unknownFlag(name string, decls []setting) error {
	msg := "unknown flag --" + oneLine.Replace(name)
	if best := closest(name, decls, func(d *setting) string { return d.name }); best != nil {
		msg += " (did you mean --" + best.name + "?)"
	}
	return errors.New(msg)
}

// closest is the setting whose key(d) is nearest to name, if one is near
// enough to be what a typo meant; nil otherwise.
func closest(name string, decls []setting, key func(d *setting) string) *setting {
	var best *setting
	bestDist := len(name)/3 + 2
	for i := range decls {
		if decls[i].name == "" {
			continue
		}
		if dist := editDistance(name, key(&decls[i])); dist < bestDist {
			best, bestDist = &decls[i], dist
		}
	}
	return best
}

// notSettings are the LIFECYCLED_ variables that are no setting of
// lifecycled and may be set around it: the project's build argument
// (examples/demo/Dockerfile, integration/kube) and test knobs
// (integration/soak_test.go). Every other LIFECYCLED_ variable must name
// a setting.
var notSettings = []string{"LIFECYCLED_IMAGE", "LIFECYCLED_SOAK", "LIFECYCLED_SOAK_OUT"}

// CheckEnv refuses a LIFECYCLED_ variable in environ (KEY=VALUE, as
// os.Environ) that names no setting of run and is not in notSettings,
// naming the closest one: LIFECYCLED_DRAIN_DEALY=5s must not be dropped
// without a word, as an unknown flag is not. The first in sorted order is
// named, so that the line does not change from run to run.
func CheckEnv(environ []string) error {
	decls := new(Settings).declare()
	known := map[string]bool{}
	for _, n := range notSettings {
		known[n] = true
	}
	for i := range decls {
		if decls[i].name != "" {
			known[decls[i].envVar()] = true
		}
	}
	var unknown []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LIFECYCLED_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	msg := "unknown environment variable " + oneLine.Replace(unknown[0])
	suffix := func(d *setting) string { return strings.TrimPrefix(d.envVar(), "LIFECYCLED_") }
	if best := closest(strings.TrimPrefix(unknown[0], "LIFECYCLED_"), decls, suffix); best != nil {
		msg += " (did you mean " + best.envVar() + "?)"
	}
	if len(unknown) > 1 {
		msg += fmt.Sprintf(" and %d more", len(unknown)-1)
	}
	return errors.New(msg)
}

// LookupEnv is getenv over environ (KEY=VALUE, as os.Environ); the first
// of a repeated key wins, as in os.Getenv.
func LookupEnv(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // a flag name is short; this keeps a long typo cheap
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyEnv sets every setting not given as a flag from its LIFECYCLED_
// variable, and adds it to given. Repeatable settings take
// comma-separated values there.
func applyEnv(decls []setting, getenv func(string) string, given map[string]bool) error {
	for i := range decls {
		d := &decls[i]
		if d.name == "" || given[d.name] {
			continue
		}
		v := getenv(d.envVar())
		if v == "" {
			continue
		}
		vals := []string{v}
		if isList(d.value) {
			vals = strings.Split(v, ",")
		}
		for _, one := range vals {
			if err := d.value.Set(strings.TrimSpace(one)); err != nil {
				return errors.New(oneLine.Replace(fmt.Sprintf("%s=%q: %v", d.envVar(), v, err)))
			}
		}
		given[d.name] = true
	}
	return nil
}

// parse reads the flags of args and then the environment, and returns the
// settings and the names of those given either way, which the config file
// must not override.
func parse(args []string, getenv func(string) string) (*Settings, map[string]bool, error) {
	s := Defaults()
	decls := s.declare()
	given, rest, err := parseFlags(decls, args)
	if err != nil {
		return s, nil, err
	}
	if err := applyEnv(decls, getenv, given); err != nil {
		return s, nil, err
	}
	s.Command = rest
	return s, given, nil
}

// Parse reads the flags of args and then the environment (getenv), without
// the --config file.
func Parse(args []string, getenv func(string) string) (*Settings, error) {
	s, _, err := parse(args, getenv)
	return s, err
}

// Load is Parse, then the config file if one is given, read with readFile:
// flag > env > file > default.
func Load(args []string, getenv func(string) string, readFile func(string) ([]byte, error)) (*Settings, error) {
	s, given, err := parse(args, getenv)
	if err != nil || s.Config == "" {
		return s, err
	}
	data, err := readFile(s.Config)
	if err != nil {
		return s, fmt.Errorf("--config: %w", err)
	}
	if err := applyFile(s, data, given); err != nil {
		return s, fmt.Errorf("--config %s: %w", s.Config, err)
	}
	return s, nil
}
