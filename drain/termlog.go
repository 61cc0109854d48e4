package drain

import (
	"fmt"
	"os"

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
