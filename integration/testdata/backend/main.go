// Command backend is the app of the zero-downtime simulation: a plain HTTP
// server that stops the way a typical, naive app does. On SIGTERM it calls
// http.Server.Shutdown at once: the listener closes, so new connections are
// refused from that instant, idle keep-alive connections are closed, and
// requests already in flight are finished. Then it exits 0. It does nothing
// to wait for load balancers; that is lifecycled's job.
//
// Each answer of / names the backend in its Backend-Host header (the
// hostname: a pod's name in Kubernetes).
//
// It prints facts the tests read, one `key=value` per line on stdout:
// pid=N at start, term_ns=T when SIGTERM arrives, and served=N and
// exit_ns=T just before it exits (times are Unix nanoseconds).
//
// The same program is the child of the stop-sequence tests: with -on-term
// ignore it ignores SIGTERM (to be SIGKILLed at the grace period), with
// -term-file it also writes term_ns to a file, with -pid-file it writes its
// pid to a file once its signal handling is in place (so a test may signal
// it without racing its start), and without -addr it serves nothing and only
// waits for the signal. With -exit-delay it exits that long after it
// stopped serving; with -unready-file its /healthz fails while that file
// exists. It serves HTTP/1.1 and h2c.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the flags.
type options struct {
	addr                      string
	work, shutdownTimeout     time.Duration
	exitDelay                 time.Duration
	onTerm, termFile, pidFile string
	unreadyFile               string
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "serve HTTP on this address (none if empty)")
	flag.DurationVar(&o.work, "work", 2*time.Millisecond, "time each request of / takes")
	flag.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 5*time.Second, "longest wait for in-flight requests on SIGTERM")
	flag.StringVar(&o.onTerm, "on-term", "shutdown", "what SIGTERM does: shutdown, or ignore")
	flag.StringVar(&o.termFile, "term-file", "", "write the Unix nanosecond time of SIGTERM to this file")
	flag.StringVar(&o.pidFile, "pid-file", "", "write the pid to this file once started")
	flag.DurationVar(&o.exitDelay, "exit-delay", 0, "after the shutdown on SIGTERM, wait this long before exiting (an app that stops serving long before it exits)")
	flag.StringVar(&o.unreadyFile, "unready-file", "", "/healthz answers 503 while this file exists")
	flag.Parse()
	os.Exit(run(o))
}

func run(o options) int {
	addr, work, shutdownTimeout, onTerm, termFile, pidFile := o.addr, o.work, o.shutdownTimeout, o.onTerm, o.termFile, o.pidFile
	var sigs chan os.Signal
	switch onTerm {
	case "shutdown":
		sigs = make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
	case "ignore":
		signal.Ignore(syscall.SIGTERM)
	default:
		fmt.Fprintf(os.Stderr, "backend: -on-term %q: want shutdown or ignore\n", onTerm)
		return 2
	}

	var served atomic.Int64
	var srv *http.Server
	serveErr := make(chan error, 1)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "backend: %v\n", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if o.unreadyFile != "" {
				if _, err := os.Stat(o.unreadyFile); err == nil {
					http.Error(w, "unready", http.StatusServiceUnavailable)
					return
				}
			}
			_, _ = w.Write([]byte("ok"))
		})
		// Which backend answered, for clients behind a load balancer
		// (a Kubernetes Service: the pod's name).
		host, _ := os.Hostname()
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(work)
			served.Add(1)
			w.Header().Set("Backend-Host", host)
			_, _ = w.Write([]byte("ok"))
		})
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, Protocols: new(http.Protocols)}
		// HTTP/1.1, and HTTP/2 in clear text for the h2c clients (on
		// SIGTERM, Shutdown sends those a GOAWAY).
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		go func() { serveErr <- srv.Serve(ln) }()
	}
	fmt.Printf("pid=%d\n", os.Getpid())
	if pidFile != "" {
		// Written whole under a temporary name, so a reader never sees
		// an empty file.
		tmp := pidFile + ".tmp"
		err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		if err == nil {
			err = os.Rename(tmp, pidFile)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "backend: %v\n", err)
			return 1
		}
	}

	select {
	case <-sigs: // nil when ignoring: then only SIGKILL ends us
	case err := <-serveErr:
		fmt.Fprintf(os.Stderr, "backend: serve: %v\n", err)
		return 1
	}
	term := time.Now().UnixNano()
	fmt.Printf("term_ns=%d\n", term)
	if termFile != "" {
		if err := os.WriteFile(termFile, []byte(strconv.FormatInt(term, 10)+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "backend: %v\n", err)
		}
	}
	code := 0
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		err := srv.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "backend: shutdown: %v\n", err)
			code = 1
		}
	}
	time.Sleep(o.exitDelay)
	fmt.Printf("served=%d\nexit_ns=%d\n", served.Load(), time.Now().UnixNano())
	return code
}
