package drain

import "github.com/lifecycled/lifecycled/supervisor"

// Process is what the stop sequence needs from the supervised child: the
// same as supervisor.Terminate, the one kill escalation, which the
// sequence ends with. *supervisor.Child is one; keeping the interface this
// small lets the sequence be tested against any real process. Exited ends
// the waits before the stop signal, since there is no app left to drain;
// Done ends the sequence, so that it never ends while a grandchild still
// holds a port or a file.
type Process = supervisor.Process
