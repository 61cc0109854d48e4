//go:build kube

package kube

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load is a set of HTTP clients running inside a network namespace
// against one URL: keep-alive clients (one connection each, reused) and
// new-connection clients (a fresh TCP connection per request), each
// sending a request every 20 ms. It is bounded: at most 2+2 clients by
// default and as long as the caller lets it run.
type load struct {
	ok, failed atomic.Int64
	stop       atomic.Bool
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       map[string]int
	// firstFail and lastFail are the times of the first and last failure.
	firstFail, lastFail time.Time
}

// loadResult is what a load saw.
type loadResult struct {
	OK, Failed          int64
	Errors              map[string]int
	FirstFail, LastFail time.Time
}

func (r loadResult) String() string {
	var es []string
	for e, n := range r.Errors {
		es = append(es, fmt.Sprintf("%dx %s", n, e))
	}
	sort.Strings(es)
	return fmt.Sprintf("%d ok, %d failed %v", r.OK, r.Failed, es)
}

// startLoad starts keepAlive + newConn clients; Stop ends them.
func startLoad(nsPath, url string, keepAlive, newConn int) *load {
	var cs []*http.Client
	for range keepAlive {
		cs = append(cs, nsClient(nsPath, true, 3*time.Second))
	}
	for range newConn {
		cs = append(cs, nsClient(nsPath, false, 3*time.Second))
	}
	return startLoadClients(url, cs...)
}

// startLoadClients starts one caller per client (clients may be shared:
// callers of one pool); Stop ends them.
func startLoadClients(url string, clients ...*http.Client) *load {
	l := &load{errs: map[string]int{}}
	worker := func(c *http.Client) {
		defer l.wg.Done()
		defer c.CloseIdleConnections()
		for !l.stop.Load() {
			// Not the caller's context: stopping the load must not
			// fail a request in flight.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			code, _, err := httpGet(ctx, c, url)
			cancel()
			switch {
			case err != nil:
				l.fail(shortErr(err))
			case code != http.StatusOK:
				l.fail(fmt.Sprintf("HTTP %d", code))
			default:
				l.ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, c := range clients {
		l.wg.Add(1)
		go worker(c)
	}
	return l
}

func (l *load) fail(e string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs[e]++
	now := time.Now()
	if l.firstFail.IsZero() {
		l.firstFail = now
	}
	l.lastFail = now
}

// Stop ends the clients, lets requests in flight finish, and returns the
// counts.
func (l *load) Stop() loadResult {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{OK: l.ok.Load(), Failed: l.failed.Load(), Errors: l.errs, FirstFail: l.firstFail, LastFail: l.lastFail}
}

// shortErr keeps the part of a client error that says what happened
// (connection refused, reset, EOF, timeout), without addresses that vary.
func shortErr(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset by peer", "EOF", "Client.Timeout", "context deadline exceeded", "i/o timeout", "no route to host", "broken pipe"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}
