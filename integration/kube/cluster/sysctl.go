package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hostSysctls are the global (not per network namespace) settings the
// kubelet writes at start (its "kernel defaults"); the cluster puts them
// back on teardown.
var hostSysctls = []string{
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// readSysctls reads the current values of hostSysctls.
func readSysctls() (map[string]string, error) {
	m := make(map[string]string, len(hostSysctls))
	for _, k := range hostSysctls {
		b, err := os.ReadFile(sysctlPath(k))
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", k, err)
		}
		m[k] = strings.TrimSpace(string(b))
	}
	return m, nil
}

// restoreSysctls writes back the values readSysctls read.
func restoreSysctls(m map[string]string) error {
	var errs []string
	for k, v := range m {
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Sprintf("restore sysctl %s=%s: %v", k, v, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// SysctlDiff returns the host sysctls whose value differs from want, as
// "key: now X, was Y" lines; empty when all match.
func SysctlDiff(want map[string]string) ([]string, error) {
	now, err := readSysctls()
	if err != nil {
		return nil, err
	}
	var d []string
	for _, k := range hostSysctls {
		if w, ok := want[k]; ok && now[k] != w {
			d = append(d, fmt.Sprintf("%s: now %s, was %s", k, now[k], w))
		}
	}
	return d, nil
}

// HostSysctls returns the current values of the host settings the kubelet
// changes, for a caller to compare after Down.
func HostSysctls() (map[string]string, error) { return readSysctls() }
