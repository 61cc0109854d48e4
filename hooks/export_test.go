package hooks

import "time"

// flush waits until the lines written so far are in the file.
func (l *Log) flush() bool { return l.queue.Flush(5 * time.Second) }
