package lifecycle

import (
	"fmt"
	"os"
	"unicode/utf8"
)

// maxTerminationMessage is the most the kubelet reads from a container's
// termination message file.
const maxTerminationMessage = 4096

// writeTerminationLog writes message to path (--termination-log), cut at a
// character boundary to the 4096 bytes the kubelet reads, keeping the head
// where the reason is.
//
// The file is written in place rather than renamed over: Kubernetes
// bind-mounts /dev/termination-log, and a rename onto a mount point fails.
func writeTerminationLog(path, message string) error {
	if len(message) > maxTerminationMessage {
		const note = " [truncated]"
		cut := maxTerminationMessage - len(note)
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut-- // never half a character
		}
		message = message[:cut] + note
	}
	if err := os.WriteFile(path, []byte(message), 0o644); err != nil {
		return fmt.Errorf("write termination log %s: %w", path, err)
	}
	return nil
}
