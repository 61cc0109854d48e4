package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const rssTargetMiB = 12 // lifecycled's idle VmRSS ≤ 12 MiB

// procSample is what /proc says of one process at one moment.
type procSample struct {
	rssKiB    int64 // VmRSS
	anonKiB   int64 // RssAnon: private memory
	fileKiB   int64 // RssFile: pages of the binary and libraries, shared through the page cache
	hwmKiB    int64 // VmHWM
	threads   int
	ticks     int64 // utime+stime, clock ticks (all threads)
	cpuNanos  int64 // sum of every thread's run time from schedstat: finer than ticks
	switches  int64 // voluntary+involuntary context switches of every thread: wake-ups
	available bool
}

func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "VmHWM":
			s.hwmKiB = n
		case "RssAnon":
			s.anonKiB = n
		case "RssFile":
			s.fileKiB = n
		case "Threads":
			s.threads = int(n)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the parenthesised name: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.ticks = ut + st

	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		if data, err := os.ReadFile(task + "/schedstat"); err == nil {
			if f := strings.Fields(string(data)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				s.cpuNanos += n
			}
		}
		if data, err := os.ReadFile(task + "/status"); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				k, v, _ := strings.Cut(line, ":")
				if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					s.switches += n
				}
			}
		}
	}
	s.available = true
	return s, nil
}

// clockTicks is USER_HZ, the unit of utime and stime: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// idleSection starts every wrapper at once supervising `sleep`, lets them
// settle, then reads their memory and the CPU they use while nothing
// happens: what each costs per container, all day.
func idleSection(b *bench) (*table, error) {
	sleep := fmt.Sprint(int((b.set.idleSettle + b.set.idleWindow + 30*time.Second).Seconds()))
	cs := b.candidates(false)
	pids := map[string]int{}
	defer func() {
		for _, pid := range pids {
			stop(pid, 5*time.Second)
		}
	}()
	for _, c := range cs {
		pid, err := b.spawn(c.w.command("/bin/sleep", sleep), nil, nil, nil, true)
		if err != nil {
			return nil, err
		}
		pids[c.name] = pid
	}
	b.progress("idle: settle %s, then measure over %s", b.set.idleSettle, b.set.idleWindow)
	time.Sleep(b.set.idleSettle)
	before := map[string]procSample{}
	for _, c := range cs {
		s, err := readProc(pids[c.name])
		if err != nil {
			return nil, fmt.Errorf("%s exited early: %w", c.name, err)
		}
		before[c.name] = s
	}
	start := time.Now()
	time.Sleep(b.set.idleWindow)
	window := time.Since(start)

	t := &table{
		title: "Idle cost: wrapper supervising `sleep`",
		intro: fmt.Sprintf("All wrappers run at once, each supervising `/bin/sleep %s`. VmRSS (and VmHWM, the peak) from "+
			"/proc/PID/status after %s, split into RssAnon (private) and RssFile (the binary's and libraries' pages, "+
			"shared through the page cache with every other process running the same file); CPU over the next %s, as %% of one core: from utime+stime of /proc/PID/stat "+
			"(10 ms ticks, coarse) and from the run time of every thread in /proc/PID/task/*/schedstat (ns); "+
			"wake-ups/s = context switches of every thread per second.", sleep, b.set.idleSettle, b.set.idleWindow),
		header: []string{"wrapper", "VmRSS", "RssAnon", "RssFile", "VmHWM", "threads", "CPU (utime+stime)", "CPU (schedstat)", "wake-ups/s", "verdict (VmRSS ≤ 12 MiB)"},
	}
	for _, c := range cs {
		after, err := readProc(pids[c.name])
		if err != nil {
			return nil, fmt.Errorf("%s exited during the idle window: %w", c.name, err)
		}
		bs := before[c.name]
		tickPct := float64(after.ticks-bs.ticks) / clockTicks / window.Seconds() * 100
		nsPct := float64(after.cpuNanos-bs.cpuNanos) / float64(window.Nanoseconds()) * 100
		wakeups := float64(after.switches-bs.switches) / window.Seconds()
		rss := bs.rssKiB * 1024
		v := t.verdictCell(c.w, func() verdict {
			return check(fmt.Sprintf("idle VmRSS ≤ %d MiB", rssTargetMiB), float64(rss)/(1<<20), rssTargetMiB, fmtMiB(rss))
		})
		t.rows = append(t.rows, []string{c.name, fmtMiB(rss), fmtMiB(bs.anonKiB * 1024), fmtMiB(bs.fileKiB * 1024), fmtMiB(after.hwmKiB * 1024), fmt.Sprint(after.threads),
			fmt.Sprintf("%.2f %%", tickPct), fmt.Sprintf("%.3f %%", nsPct), fmt.Sprintf("%.1f", wakeups), v})
	}
	return t, nil
}
