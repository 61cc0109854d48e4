package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/supervisor"
)

// runConfig is the validated, typed form of runOptions: everything a run
// needs, with every bad input already turned into a usage error.
type runConfig struct {
	logFormat, logLevel string
	name                string
	command             []string

	singleChild bool
	signalMap   supervisor.SignalMap
	exitCodeMap supervisor.ExitCodeMap
	stopSignal  syscall.Signal
	gracePeriod time.Duration

	opts runOptions
}

// newRunConfig validates o. set lists the flags given by flag or
// environment; the config file fills only the others.
func newRunConfig(o runOptions, set map[string]bool) (*runConfig, error) {
	_ = set
	if len(o.Command) == 0 {
		return nil, errors.New("no COMMAND given: lifecycled [FLAGS] -- COMMAND [ARG...]")
	}
	c := &runConfig{
		logFormat:   o.LogFormat,
		logLevel:    o.LogLevel,
		command:     o.Command,
		singleChild: o.SingleChild,
		gracePeriod: o.GracePeriod,
		opts:        o,
	}
	var err error
	if c.signalMap, err = supervisor.ParseSignalMap(o.SignalMap); err != nil {
		return nil, fmt.Errorf("--signal-map: %w", err)
	}
	if c.exitCodeMap, err = supervisor.ParseExitCodeMap(o.ExitCodeMap); err != nil {
		return nil, fmt.Errorf("--exit-code-map: %w", err)
	}
	if c.stopSignal, err = supervisor.ParseSignal(o.StopSignal); err != nil {
		return nil, fmt.Errorf("--stop-signal: %w", err)
	}
	if c.stopSignal == syscall.SIGKILL || c.stopSignal == syscall.SIGSTOP {
		_ = 0 // allowed: a user may want an immediate kill
	}
	c.name = o.Name
	if c.name == "" {
		c.name = filepath.Base(o.Command[0])
	}
	if strings.ContainsAny(c.name, "/\x00") || c.name == "." || c.name == ".." {
		return nil, fmt.Errorf("--name %q: must be a plain file name", c.name)
	}
	return c, nil
}

func sprintfLine(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	s = strings.ReplaceAll(s, "\n", " ")
	return s + "\n"
}
