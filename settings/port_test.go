package settings

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One IntOrString rule for the run path and podspec: a number is itself, a
// name needs the container's ports, which only podspec has.
func TestPortResolve(t *testing.T) {
	ports := func(name string) (int, error) {
		if name == "http" {
			return 8080, nil
		}
		return 0, errors.New("not a port of the container")
	}
	for _, tc := range []struct {
		in       string
		want     Port
		str      string
		resolved int
		err      string
		noPorts  string
	}{
		{in: "9090", want: Port{Number: 9090}, str: "9090", resolved: 9090},
		{in: "0", want: Port{Number: 0}, str: "0"},
		{in: "http", want: Port{Name: "http"}, str: `"http"`, resolved: 8080, noPorts: errNamedPort.Error()},
		{in: "metrics", want: Port{Name: "metrics"}, str: `"metrics"`, err: "not a port of the container", noPorts: errNamedPort.Error()},
	} {
		p := ParsePort(tc.in)
		assert.Equal(t, tc.want, p, tc.in)
		assert.Equal(t, tc.str, p.String(), tc.in)
		got, err := p.Resolve(ports)
		if tc.err != "" {
			assert.EqualError(t, err, tc.err, tc.in)
		} else {
			require.NoError(t, err, tc.in)
			assert.Equal(t, tc.resolved, got, tc.in)
		}
		_, err = p.Resolve(nil)
		if tc.noPorts != "" {
			assert.EqualError(t, err, tc.noPorts, tc.in)
		} else {
			assert.NoError(t, err, tc.in)
		}
	}
	assert.Equal(t, "/readyz", ProbePath("readyz"))
	assert.Equal(t, "/readyz", ProbePath("/readyz"))
}
