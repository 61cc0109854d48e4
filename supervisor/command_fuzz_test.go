package supervisor

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzParseCommand: a hook or exec-probe command is exec form exactly when it
// is a JSON array of strings (and then runs as written, with no shell), shell
// form otherwise; exec form survives a JSON round trip; nothing that parses
// holds a NUL byte, which no argv can carry; errors are one line.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		`["/bin/echo","hi"]`, `  ["/bin/true"]  `, `echo hi && exit 3`, `[ -f /tmp/ready ]`,
		`[]`, `[""]`, `[1,2]`, `["a",null]`, "[\n \"/bin/echo\",\n 1\n]", `["/bin/echo","$HOME;id"]`,
		"", "   ", `["a\u0000b"]`, "echo \x00", `{"a":1}`, `"str"`, `["/bin/sh","-c","exit 0"]`,
		`["\u2028"]`, `[` + strings.Repeat(`"x",`, 100) + `"y"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		argv, shell, err := ParseCommand(in)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error for %q is not one line: %q", in, msg)
			}
			return
		}
		if len(argv) == 0 || argv[0] == "" {
			t.Fatalf("ParseCommand(%q) = %q: no program", in, argv)
		}
		for _, a := range argv {
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatalf("ParseCommand(%q) = %q: NUL in an argument, which exec cannot pass", in, argv)
			}
		}
		trimmed := strings.TrimSpace(in)
		isArray := strings.HasPrefix(trimmed, "[") && json.Valid([]byte(trimmed))
		if shell {
			if isArray {
				t.Fatalf("ParseCommand(%q): a JSON array ran as shell form", in)
			}
			if !slices.Equal(argv, []string{"/bin/sh", "-c", in}) {
				t.Fatalf("ParseCommand(%q) = %q, want /bin/sh -c and the command as written", in, argv)
			}
			return
		}
		if !isArray {
			t.Fatalf("ParseCommand(%q) = %q: exec form from something not a JSON array", in, argv)
		}
		b, err := json.Marshal(argv)
		if err != nil {
			t.Fatal(err)
		}
		again, shell2, err := ParseCommand(string(b))
		if err != nil || shell2 || !slices.Equal(again, argv) {
			t.Fatalf("exec form %q does not survive a round trip through %s: %q %v %v", argv, b, again, shell2, err)
		}
	})
}
