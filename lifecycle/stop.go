package lifecycle

import (
	"sync"
	"syscall"
)

// stopRequest records requests to stop: the first starts the stop
// sequence, a second SIGTERM or SIGINT skips what is left of its waits.
type stopRequest struct {
	mu     sync.Mutex
	n      int
	sig    syscall.Signal
	reason string
	first  chan struct{}
	second chan struct{}
}

func newStopRequest() *stopRequest {
	return &stopRequest{first: make(chan struct{}), second: make(chan struct{})}
}

// request records one stop request; sig is 0 when it did not come from a
// signal (POST /quitquitquit, --exit-with, a failed actor), and such
// requests never count as the second one.
func (s *stopRequest) request(sig syscall.Signal, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 && sig == 0 {
		return
	}
	s.n++
	switch s.n {
	case 1:
		s.sig, s.reason = sig, reason
		close(s.first)
	case 2:
		close(s.second)
	}
}

// requested returns the first request's signal and reason.
func (s *stopRequest) requested() (syscall.Signal, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig, s.reason
}
