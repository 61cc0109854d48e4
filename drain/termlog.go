package drain

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/lifecycled/lifecycled/redact"
)

// maxTerminationMessage is the most the kubelet reads from a container's
// termination message file.
const maxTerminationMessage = 4096

// WriteTerminationLog writes message to path (--termination-log), cut at a
// character boundary to the 4096 bytes the kubelet reads, keeping the head
// where the reason is.
//
// The file is written in place rather than renamed over: Kubernetes
// bind-mounts /dev/termination-log, and a rename onto a mount point fails.
func WriteTerminationLog(path, message string) error {
	// The message ends up in the pod's status, which anyone who can read
	// pods sees: no password of a URL it names.
	message = redact.URLs(message)
	if len(message) > maxTerminationMessage {
		const note = " [truncated]"
		message = cutUTF8(message, maxTerminationMessage-len(note)) + note
	}
	if err := os.WriteFile(path, []byte(message), 0o644); err != nil {
		return fmt.Errorf("write termination log %s: %w", path, err)
	}
	return nil
}

// stderrTailHeader separates the reason from the child's last words.
const stderrTailHeader = "\n--- last lines of the child's stderr ---\n"

// TerminationMessage is the reason line followed by the end of what the
// child wrote to stderr, within the 4096 bytes the kubelet reads: the
// reason is kept whole (it says what happened), the tail gets what is left
// and keeps its most recent bytes, which is where a panic or a stack trace
// ends. The tail is made valid UTF-8 (the API server stores the message as
// a string): a character cut at the start is dropped, and invalid bytes
// become U+FFFD. Passwords in URLs are masked in both. An empty tail adds
// nothing.
func TerminationMessage(reason string, tail []byte) string {
	// Masked before measuring: WriteTerminationLog masks again, and a
	// mask longer than its password would push the newest bytes out.
	reason = redact.URLs(reason)
	if len(tail) > 0 {
		tail = []byte(redact.URLs(string(tail)))
	}
	budget := maxTerminationMessage - len(reason) - len(stderrTailHeader)
	if len(tail) == 0 || budget <= 0 {
		return reason
	}
	if len(tail) > budget {
		tail = tail[len(tail)-budget:]
	}
	for i := 0; i < utf8.UTFMax-1 && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
		tail = tail[1:] // the rest of a character cut above
	}
	s := strings.ToValidUTF8(string(tail), "\uFFFD")
	for len(s) > budget { // U+FFFD is 3 bytes: a replaced byte may not fit
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	return reason + stderrTailHeader + s
}
