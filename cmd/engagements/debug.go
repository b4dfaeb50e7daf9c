package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves Go's profiles (net/http/pprof) on --debug-listen, a
// listener of its own so that the API's port never exposes them. Only a
// loopback address is taken: a profile shows the process's internals, and
// a CPU profile costs the service while it runs.
type debugServer struct {
	srv      *http.Server
	listener net.Listener
}

// checkDebugListen refuses a --debug-listen address that is not loopback.
func checkDebugListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-listen must be host:port on loopback, such as 127.0.0.1:6060: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--debug-listen must be on loopback (127.0.0.1, ::1 or localhost), not %q: profiles show the process's internals", host)
	}
	return nil
}

// startDebug listens on addr and serves the profiles until close.
func startDebug(addr string, log *slog.Logger) (*debugServer, error) {
	if err := checkDebugListen(addr); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &debugServer{listener: l, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := d.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug listener stopped", "err", err)
		}
	}()
	log.Info("profiles served (net/http/pprof)", "url", "http://"+l.Addr().String()+"/debug/pprof/")
	return d, nil
}

// close stops the listener; a profile being taken is cut short.
func (d *debugServer) close() error {
	if d == nil {
		return nil
	}
	return d.srv.Close()
}
