package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

type intValue int

// Set takes decimal digits only, with an optional "-": "0x10", "010" or
// "1_000" are no port and no count anyone types on purpose (base-0
// parsing read --drain-connections 0x10 as port 16, 010 as 8).
func (v *intValue) Set(s string) error {
	s = strings.TrimSpace(s)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return errors.New("want a whole number in decimal digits")
	}
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errors.New("want a whole number in decimal digits")
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

// durationValue accepts Go durations and bare seconds, like ParseDuration.
type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "bad duration "+strconv.Quote(strings.TrimSpace(s))+": "))
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

// listValue is a repeatable flag: each use adds a value. From the
// environment it takes comma-separated values.
type listValue []string

func (v *listValue) Set(s string) error { *v = append(*v, s); return nil }
func (v *listValue) String() string     { return strings.Join(*v, ",") }

// targetValue is a TARGET, checked as it is given.
type targetValue struct {
	t         *Target
	allowExec bool
}

func (v *targetValue) Set(s string) error {
	t, err := probes.ParseTarget(s, v.allowExec)
	if err != nil {
		return err
	}
	*v.t = Target{Target: t, set: true}
	return nil
}
func (v *targetValue) String() string { return v.t.Raw }

// commandValue is a hook command in Dockerfile style, checked as it is
// given.
type commandValue struct{ c *Command }

func (v *commandValue) Set(s string) error {
	argv, shell, err := supervisor.ParseCommand(s)
	if err != nil {
		return err
	}
	*v.c = Command{Raw: s, Argv: argv, Shell: shell}
	return nil
}
func (v *commandValue) String() string { return v.c.Raw }

// execCommand is the exec form of argv, as a Kubernetes exec handler is:
// no shell. Raw is its JSON array, which is how exec forms are shown.
func execCommand(argv []string) Command {
	b, _ := json.Marshal(argv)
	return Command{Raw: string(b), Argv: argv}
}

func isBool(v value) bool {
	_, ok := v.(*boolValue)
	return ok
}

func isList(v value) bool {
	_, ok := v.(*listValue)
	return ok
}

// ParseDuration accepts Go durations ("1m30s") and, as Kubernetes fields
// are in seconds, a bare number of seconds ("5").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("bad duration %q: negative", s)
		}
		return d, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 && secs < 1e9 {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("bad duration %q: want e.g. 500ms, 10s, 1m", s)
}
