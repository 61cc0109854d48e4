package supervisor

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in        string
		wantArgv  []string
		wantShell bool
		wantErr   string
	}{
		{in: `["/bin/echo","hi"]`, wantArgv: []string{"/bin/echo", "hi"}},
		{in: `  ["/bin/true"]  `, wantArgv: []string{"/bin/true"}},
		{in: `echo hi && exit 3`, wantArgv: []string{"/bin/sh", "-c", "echo hi && exit 3"}, wantShell: true},
		// Not valid JSON: a shell test, as Docker reads it.
		{in: `[ -f /tmp/x ]`, wantArgv: []string{"/bin/sh", "-c", "[ -f /tmp/x ]"}, wantShell: true},
		{in: `["unterminated"`, wantArgv: []string{"/bin/sh", "-c", `["unterminated"`}, wantShell: true},
		{in: `{"a":1}`, wantArgv: []string{"/bin/sh", "-c", `{"a":1}`}, wantShell: true},
		{in: ``, wantErr: "empty"},
		{in: "   \t", wantErr: "empty"},
		{in: `[]`, wantErr: "empty array"},
		{in: `[1, 2]`, wantErr: "array of strings"},
		{in: `["a", 2]`, wantErr: "array of strings"},
		{in: `[""]`, wantErr: "empty program name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			argv, shell, err := ParseCommand(tt.in)
			if !checkParse(t, argv, err, tt.wantArgv, tt.wantErr) {
				assert.Equal(t, tt.wantShell, shell)
			}
		})
	}
}
