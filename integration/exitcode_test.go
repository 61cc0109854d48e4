package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestExitCodeEveryValue: lifecycled exits with the child's exit code, for
// every code 0-255, as a plain process and as PID 1.
func TestExitCodeEveryValue(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 2*time.Minute)
		var mu sync.Mutex
		wrong := map[int]result{}
		parallel(256, 8, func(code int) {
			r := runMode(t, ctx, m, "--", "sh", "-c", fmt.Sprintf("exit %d", code))
			if r.code != code {
				mu.Lock()
				wrong[code] = r
				mu.Unlock()
			}
		})
		assert.Empty(t, wrong, "exit codes that did not come through (code → result)")
	})
}

// TestExitCodeKilledBySignal: a child killed by signal N gives 128+N, real
// time signals and core-dumping signals included.
func TestExitCodeKilledBySignal(t *testing.T) {
	// Signals whose default action ends the process. The shell kills
	// itself; ulimit -c 0 keeps core dumps out of the working directory.
	sigs := []int{1, 2, 3, 6, 9, 10, 11, 12, 13, 14, 15, 24, 26, 31, 34, 40, 64}
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		var mu sync.Mutex
		got := map[int]int{}
		parallel(len(sigs), 8, func(i int) {
			r := runMode(t, ctx, m, "--", "sh", "-c", fmt.Sprintf("ulimit -c 0; kill -%d $$; sleep 10", sigs[i]))
			mu.Lock()
			got[sigs[i]] = r.code
			mu.Unlock()
		})
		for _, n := range sigs {
			assert.Equal(t, 128+n, got[n], "child killed by signal %d", n)
		}
	})
}

// TestExitCodeRepeated: 500 runs of `exit 3`, 8 at a time, all give 3 — the
// main child's status is never lost or taken by another waiter.
func TestExitCodeRepeated(t *testing.T) {
	const runs = 500
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 2*time.Minute)
		var mu sync.Mutex
		codes := map[int]int{} // exit code → how often
		parallel(runs, 8, func(int) {
			r := runMode(t, ctx, m, "--", "sh", "-c", "exit 3")
			mu.Lock()
			codes[r.code]++
			mu.Unlock()
		})
		assert.Equal(t, map[int]int{3: runs}, codes, "exit codes of %d runs of `exit 3`", runs)
	})
}

// TestExitCodeAmongManyExits: the main child exits at the same moment as 100
// others (its own background children, orphaned to lifecycled, all exiting
// 7): lifecycled still reports the main child's 42, every time.
func TestExitCodeAmongManyExits(t *testing.T) {
	const runs = 40
	script := `i=0; while [ $i -lt 100 ]; do (exit 7) & i=$((i+1)); done; exit 42`
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 2*time.Minute)
		var mu sync.Mutex
		codes := map[int]int{}
		parallel(runs, 4, func(int) {
			r := runMode(t, ctx, m, "--", "sh", "-c", script)
			mu.Lock()
			codes[r.code]++
			mu.Unlock()
		})
		assert.Equal(t, map[int]int{42: runs}, codes, "exit codes of %d runs", runs)
	})
}
