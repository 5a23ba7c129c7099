package main

import (
	"bytes"
	stdlog "log"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// routeLogs makes log the one writer of the process's logs, so that with JSON logging every line is JSON:
// controller-runtime's logger; klog, which client-go writes to (leader election, informers, API warnings);
// and the standard library's log package, which net/http writes a server's errors to (TLS handshake failures
// of the webhook and metrics servers) when http.Server.ErrorLog is nil, as it is in controller-runtime's
// servers, which offer no option to set it.
func routeLogs(log logr.Logger) {
	ctrl.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))
	stdlog.SetFlags(0)
	stdlog.SetOutput(stdlogWriter{log: log.WithName("stdlog")})
}

// stdlogWriter logs each line the standard library's log package writes (one Write per line) as an entry.
type stdlogWriter struct {
	log logr.Logger
}

func (w stdlogWriter) Write(p []byte) (int, error) {
	w.log.Info("Standard library log line", "line", string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
