package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Defaults of ServerConfig. The API server sends a review at once and gives up after the webhook's
// timeoutSeconds (2 s shipped, 30 s at most), so a client slower than these is not an API server.
const (
	// DefaultPort is the port the webhook listens on, controller-runtime's.
	DefaultPort = 9443
	// DefaultReadHeaderTimeout bounds the TLS handshake and a request's headers: a client that sends them
	// slowly (slowloris) holds a connection this long at most.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds a whole request, headers and body (at most MaxBodyBytes).
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to the end of the answer.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection waits for its next request. Longer than the API
	// server's client keeps idle connections (90 s, k8s.io/apimachinery's SetTransportDefaults), so that the
	// client closes first and never sends a review on a connection the server is closing.
	DefaultIdleTimeout = 120 * time.Second
	// maxHeaderBytes bounds a request's headers; an API server sends a few hundred bytes (1 MiB in net/http).
	maxHeaderBytes = 64 << 10
)

// ServerConfig configures NewTLSServer. Zero values take the defaults.
type ServerConfig struct {
	// Host is the address to listen on; empty: every address.
	Host string
	// Port is the port to listen on (default DefaultPort).
	Port int
	// CertDir holds tls.crt and tls.key, read at start and again whenever they change (cert-manager's
	// rotation), with controller-runtime's certwatcher. Required.
	CertDir string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the http.Server's (defaults
	// DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout, DefaultIdleTimeout). The shortest
	// of the first three also bounds the TLS handshake.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Log receives the server's messages, connection errors (failed handshakes, timeouts) at V(1); the zero
	// Logger discards them.
	Log logr.Logger
}

// TLSServer is the webhook's HTTPS server, a controller-runtime webhook.Server for the manager's
// WebhookServer option. It serves like controller-runtime's DefaultServer (the same registration, with its
// controller_runtime_webhook_* metrics, and the same certificate reloading) with what that server does not
// let its caller set: read, write and idle timeouts, a smaller header limit, TLS 1.2 at least, and HTTP/1.1
// only.
//
// HTTP/2 is off: it exposes the server to stream-level attacks (rapid reset, CVE-2023-44487) that the
// timeouts above do not bound, and nothing needs it. The API server's client offers h2 and http/1.1 over ALPN
// and takes HTTP/1.1 here; its cost is a connection per review in flight (client-go keeps up to 25 idle per
// host), which reviews answered in well under a millisecond keep few. This is the advice controller-runtime's
// scaffolds follow (TLSOpts that drop "h2"); here HTTP/2 is neither offered over ALPN nor configured on the
// http.Server.
type TLSServer struct {
	cfg    ServerConfig
	mux    *http.ServeMux
	routes ctrlwebhook.Server // registers on mux, never started

	mu   sync.Mutex
	addr string // where the server listens, once it does
}

var _ ctrlwebhook.Server = (*TLSServer)(nil)

// NewTLSServer returns a TLSServer for cfg with its defaults filled in.
func NewTLSServer(cfg ServerConfig) (*TLSServer, error) {
	if cfg.CertDir == "" {
		return nil, errors.New("webhook server: no certificate directory")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("webhook server: port %d out of range", cfg.Port)
	}
	fill := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	fill(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	fill(&cfg.ReadTimeout, DefaultReadTimeout)
	fill(&cfg.WriteTimeout, DefaultWriteTimeout)
	fill(&cfg.IdleTimeout, DefaultIdleTimeout)
	mux := http.NewServeMux()
	return &TLSServer{cfg: cfg, mux: mux, routes: ctrlwebhook.NewServer(ctrlwebhook.Options{WebhookMux: mux})}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves the webhook.
func (*TLSServer) NeedLeaderElection() bool { return false }

// Register serves hook at path, instrumented as controller-runtime's server does; it panics if path is
// already registered.
func (s *TLSServer) Register(path string, hook http.Handler) { s.routes.Register(path, hook) }

// WebhookMux returns the multiplexer the webhooks are registered on.
func (s *TLSServer) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx is cancelled, then shuts down within the server's read and write timeouts.
func (s *TLSServer) Start(ctx context.Context) error {
	cw, err := certwatcher.New(filepath.Join(s.cfg.CertDir, "tls.crt"), filepath.Join(s.cfg.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("webhook serving certificate: %w", err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			s.cfg.Log.Error(err, "Webhook certificate watcher stopped")
		}
	}()
	ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	return s.serve(ctx, tls.NewListener(ln, s.tlsConfig(cw.GetCertificate)))
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later (with Go's default cipher suites), HTTP/1.1
// only over ALPN.
func (s *TLSServer) tlsConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: getCertificate,
	}
}

// httpServer is the http.Server of the webhook: bounded in time and header size, HTTP/1.1 only.
func (s *TLSServer) httpServer() *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		Protocols:         &protocols,
		// A non-nil empty map: no HTTP/2 upgrade, whatever ALPN says.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     stdlog.New(connErrors{s.cfg.Log}, "", 0),
	}
}

// serve serves on ln (a TLS listener) until ctx is cancelled.
func (s *TLSServer) serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// A request in flight is over within the read and write timeouts; past them, connections are cut.
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadTimeout+s.cfg.WriteTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.cfg.Log.Info("Webhook server did not shut down in time; connections closed", "error", err.Error())
			_ = srv.Close()
		}
	}()
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.cfg.Log.Info("Serving webhook server", "address", s.addr)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook server: %w", err)
	}
	<-stopped
	return nil
}

// StartedChecker is healthy once the server completes TLS handshakes.
func (s *TLSServer) StartedChecker() healthz.Checker {
	return func(req *http.Request) error {
		s.mu.Lock()
		addr := s.addr
		s.mu.Unlock()
		if addr == "" {
			return errors.New("webhook server has not been started yet")
		}
		// The configured host, as controller-runtime's check dials (empty: this machine), on the port
		// listened on.
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("webhook server address %q: %w", addr, err)
		}
		d := tls.Dialer{
			NetDialer: &net.Dialer{Timeout: time.Second},
			Config:    &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // only checks that it serves
		}
		ctx := context.Background()
		if req != nil { // callers of controller-runtime's checker may pass none
			ctx = req.Context()
		}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.cfg.Host, port))
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		if err := conn.Close(); err != nil {
			return fmt.Errorf("webhook server is not reachable: closing connection: %w", err)
		}
		return nil
	}
}

// connErrors writes the http.Server's error log (TLS handshake errors, timeouts, failed writes: a client's
// doing, not the server's) to a logr.Logger at V(1), so that clients cannot fill the log and the lines stay
// structured.
type connErrors struct{ log logr.Logger }

func (c connErrors) Write(p []byte) (int, error) {
	c.log.V(1).Info("Webhook connection error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}
