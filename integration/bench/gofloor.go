package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/supervisor"
)

// goFloorSource is a minimal Go init (see its doc comment). It lives under
// testdata so that `go build ./...` and `go vet ./...` leave it alone; the
// bench builds it into a temporary directory as a module of its own.
//
//go:embed testdata/gofloor/main.go
var goFloorSource []byte

// buildGoFloor compiles the minimal Go init with lifecycled's build flags
// into dir and returns the binary's path.
func buildGoFloor(dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), goFloorSource, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module gofloor\n\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "gofloor")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build go-floor: %v: %s", err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// goFloorArgv runs the floor with lifecycled's own list of forwarded
// signals, so that it registers exactly as many with os/signal: each costs
// a round trip to the Go runtime's signal-mask thread.
func goFloorArgv(path string, cmd ...string) []string {
	var nums []string
	for _, s := range supervisor.ForwardedSignals() {
		nums = append(nums, strconv.Itoa(int(s)))
	}
	return append([]string{path, "-signals", strings.Join(nums, ","), "--"}, cmd...)
}
