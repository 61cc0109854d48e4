// Package registrytest runs the reference registry server (Debian's
// docker-registry, distribution 2.8) on 127.0.0.1 for tests: those of
// internal/registry and the integration tests of `inject --resolve`.
// .ci/test.sh installs docker-registry.
package registrytest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/lifecycled/lifecycled/internal/freeport"
)

// Registry is one docker-registry process.
type Registry struct {
	// Addr is where it listens: 127.0.0.1:PORT.
	Addr string
	stop func()
}

// Stop kills the registry and waits for it to exit.
func (r *Registry) Stop() { r.stop() }

// bindTries bounds the ports tried: a port from freeport may still be
// taken by another process between its pick and the registry's bind.
const bindTries = 3

// Start runs docker-registry on a free port of 127.0.0.1 with its storage
// in storage, its config file in dir, and auth as the config's auth
// section (YAML indented under auth:, empty for none), and returns once it
// listens. The process is killed with the test binary should a timeout end
// the test before Stop.
func Start(ctx context.Context, dir, storage, auth string) (*Registry, error) {
	var err error
	for range bindTries {
		var port int
		if port, err = freeport.Loopback(); err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		conf := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: lifecycled-test
`, storage, addr)
		if auth != "" {
			conf += "auth:\n" + auth
		}
		cf, cerr := os.CreateTemp(dir, "registry-*.yml")
		if cerr != nil {
			return nil, cerr
		}
		_, werr := cf.WriteString(conf)
		if cerr := cf.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, werr
		}
		var reg *Registry
		var bindFailed bool
		reg, bindFailed, err = run(ctx, cf.Name(), addr)
		if err == nil {
			return reg, nil
		}
		if !bindFailed {
			return nil, err
		}
	}
	return nil, err
}

// run starts docker-registry with config and waits for it to listen on
// addr; bindFailed says it exited because addr was taken.
func run(ctx context.Context, config, addr string) (reg *Registry, bindFailed bool, err error) {
	cmd := exec.Command("docker-registry", "serve", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, false, err
	}
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	listening := make(chan struct{})
	done := make(chan struct{})
	var logs strings.Builder
	var logMu sync.Mutex
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			if seen {
				continue // drained, so that the registry never blocks on a full pipe
			}
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				seen = true
				close(listening)
			}
		}
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	}
	select {
	case <-listening:
		return &Registry{Addr: addr, stop: sync.OnceFunc(stop)}, false, nil
	case <-done:
		stop()
		logMu.Lock()
		defer logMu.Unlock()
		return nil, strings.Contains(logs.String(), "address already in use"),
			fmt.Errorf("docker-registry exited before listening on %s:\n%s", addr, logs.String())
	case <-ctx.Done():
		stop()
		return nil, false, fmt.Errorf("docker-registry did not listen on %s: %w", addr, ctx.Err())
	}
}
