// Command floor is the least a Go HTTP server does to answer a join-time
// question: net/http reads the request and its body, and a fixed answer of
// the size geoscope gives is written back; nothing is decoded or decided.
// Run beside geoscope and OPA by internal/opacompare, it measures what
// serving HTTP alone costs on the machine, which bounds the throughput
// ratio any net/http server can reach against OPA there.
//
// Usage: floor serve --addr 127.0.0.1:PORT (the arguments the harness
// gives geoscope).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// answer has the shape and size of geoscope's answer, in the harness, to a
// join to a meeting nobody targets.
var answer = []byte(`{"decision_id":"019ae2b1-4c6f-7d3a-9b1e-2f6c8d4a5b7e","allow":true,"actions":[],"order_ids":[],"bundles":{"policies":"sha256:ffe8a113dd3aa4f3","registry":"bench"}}`)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: floor serve --addr HOST:PORT")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("floor serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8181", "address to listen on")
	_ = fs.Parse(os.Args[2:])

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	})
	mux.HandleFunc("POST /v1/admission", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(answer)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
