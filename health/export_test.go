package health

// The tests read the state as the handlers do; lifecycled itself learns of
// it through OnReadyChange and the endpoints.

// Ready reports whether every readiness check passes.
func (h *Checks) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.isReady
}

// Live reports whether every liveness check passes.
func (h *Checks) Live() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return allPass(h.liveChecks())
}
