package redact

import (
	"fmt"
	"strings"
)

// Line formats one line for stderr, ending in a newline: no line break
// inside, and no password of a URL it names (URLs).
func Line(format string, args ...any) string {
	s := URLs(fmt.Sprintf(format, args...))
	s = strings.ReplaceAll(s, "\n", " ")
	return s + "\n"
}
