package drain

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tcpEstablished is the state column of an ESTABLISHED socket in
// /proc/net/tcp (include/net/tcp_states.h).
const tcpEstablished = "01"

// establishedConns counts the established TCP connections, IPv4 and IPv6,
// whose local port is port: the connections clients opened to a server
// listening on it, in the network namespace procRoot (normally "/proc")
// shows. Outbound connections from the same process are not counted, since
// their local port is an ephemeral one.
//
// A missing tcp6 table (IPv6 disabled) is not an error; a missing tcp table
// is.
func establishedConns(procRoot string, port int) (int, error) {
	total := 0
	for _, table := range []string{"tcp", "tcp6"} {
		n, err := countEstablished(filepath.Join(procRoot, "net", table), port)
		if err != nil {
			if table == "tcp6" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return 0, err
		}
		total += n
	}
	return total, nil
}

func countEstablished(path string, port int) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("count connections to port %d: %w", port, err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpEstablished {
			continue
		}
		local := fields[1]
		i := strings.LastIndexByte(local, ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(local[i+1:], 16, 16)
		if err != nil {
			continue
		}
		if int(p) == port {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("count connections to port %d: read %s: %w", port, path, err)
	}
	return n, nil
}
