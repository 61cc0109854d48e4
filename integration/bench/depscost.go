package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lifecycled/lifecycled/internal/freeport"
)

const (
	// depsCostWaiters is how many pods wait for one dependency at once.
	depsCostWaiters = 100
	// depsCostWindow is how long they wait (then give up, exit 124).
	depsCostWindow = 12 * time.Second
)

// depsCostBins are the windows, in seconds since a waiter's first check,
// over which its checks per second are reported.
var depsCostBins = [][2]float64{{0, 1}, {1, 2}, {2, 4}, {4, 8}, {8, 12}}

// depsCost is the price of the fast schedule: depsCostWaiters copies of
// `lifecycled wait` (the init container of as many pods) wait together at the
// default interval for two dependencies that are down: a TCP port that
// refuses (nothing listens) and an HTTP health endpoint that answers 503.
// Each waiter's debug log has one line per failed check, so the checks per
// second per target are counted exactly; the HTTP server also counts what
// it served, which is what the dependency sees.
func depsCost(b *bench, subject *wrapper) (string, error) {
	refusedPort, err := freeport.Loopback()
	if err != nil {
		return "", err
	}
	var served atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tcpTarget := fmt.Sprintf("tcp://127.0.0.1:%d", refusedPort)
	httpTarget := "http://" + ln.Addr().String() + "/healthz"

	b.progress("deps: %d waiters for %s", depsCostWaiters, depsCostWindow)
	var pids []int
	var logs []string
	defer func() {
		for _, pid := range pids {
			stop(pid, 2*time.Second)
		}
	}()
	for i := range depsCostWaiters {
		path := filepath.Join(b.tmp, fmt.Sprintf("depscost-%d.log", i))
		f, err := os.Create(path)
		if err != nil {
			return "", err
		}
		pid, err := b.spawn([]string{subject.path, "wait", "--log-level", "debug", "--timeout", depsCostWindow.String(), tcpTarget, httpTarget},
			nil, nil, f, true)
		_ = f.Close()
		if err != nil {
			return "", err
		}
		pids = append(pids, pid)
		logs = append(logs, path)
	}
	for _, pid := range pids {
		if _, killed, err := waitTimeout(pid, depsCostWindow+10*time.Second); killed || err != nil {
			return "", fmt.Errorf("a waiter did not give up after %s (killed %v, %v)", depsCostWindow, killed, err)
		}
	}
	pids = nil

	counts := map[string][]float64{tcpTarget: make([]float64, len(depsCostBins)), httpTarget: make([]float64, len(depsCostBins))}
	for _, path := range logs {
		if err := countChecks(path, counts); err != nil {
			return "", err
		}
	}
	rates := func(target string) string {
		var parts []string
		for i, bin := range depsCostBins {
			perTarget := counts[target][i] / depsCostWaiters / (bin[1] - bin[0])
			parts = append(parts, fmt.Sprintf("%g–%g s: %.1f/s (%.0f/s at the dependency)", bin[0], bin[1], perTarget, perTarget*depsCostWaiters))
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprintf("**Cost of the schedule: %d pods waiting together** (`lifecycled wait --timeout %s tcp://… http://…`, "+
		"default interval 1s, %d waiters for %s; checks per second per waiter counted from each waiter's debug log, by time "+
		"since its first check). Refused TCP port (answered by the kernel: a SYN and a RST): %s. HTTP endpoint answering 503 "+
		"(the dependency does the work; backed off per attempt): %s; the server served %d requests in all (%.1f/s on average).",
		depsCostWaiters, depsCostWindow, depsCostWaiters, depsCostWindow, rates(tcpTarget), rates(httpTarget),
		served.Load(), float64(served.Load())/depsCostWindow.Seconds()), nil
}

// countChecks adds one waiter's failed checks, by target and by bin of time
// since its first check, to counts.
func countChecks(path string, counts map[string][]float64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var first time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Msg    string    `json:"msg"`
			Time   time.Time `json:"time"`
			Target string    `json:"target"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "dependency not up" {
			continue
		}
		if line.Time.IsZero() {
			// A log schema this reader does not know would put every
			// check at 0 s: say so rather than report it.
			return fmt.Errorf("%s: a check with no time: %s", path, sc.Bytes())
		}
		if first.IsZero() {
			first = line.Time
		}
		at := line.Time.Sub(first).Seconds()
		for i, bin := range depsCostBins {
			if at >= bin[0] && at < bin[1] && counts[line.Target] != nil {
				counts[line.Target][i]++
			}
		}
	}
	return sc.Err()
}
