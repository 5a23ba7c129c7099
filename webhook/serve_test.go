package webhook

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// servingCert is a self-signed serving certificate for 127.0.0.1, as PEM, and a pool trusting it.
func servingCert(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deployment-tracker-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}

// echoPath is a route of the test servers answering with the request's protocol.
const echoPath = "/echo"

// startTLSServer serves a TLSServer for cfg (CertDir set by it) on an ephemeral port of 127.0.0.1 until the
// test ends, with the route echoPath, and returns its address and a pool trusting its certificate.
func startTLSServer(t *testing.T, cfg ServerConfig) (addr string, pool *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, pool := servingCert(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CertDir = t.TempDir()
	cfg.Log = testr.New(t)
	s, err := NewTLSServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Register(echoPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, r.Proto)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.serve(ctx, tls.NewListener(ln, s.tlsConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil })))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), pool
}

// TestTLSServerVersions: TLS 1.2 and 1.3 are served, older versions refused in the handshake.
func TestTLSServerVersions(t *testing.T) {
	addr, pool := startTLSServer(t, ServerConfig{})
	tests := []struct {
		name    string
		version uint16
		wantErr bool
	}{
		{"TLS 1.0", tls.VersionTLS10, true},
		{"TLS 1.1", tls.VersionTLS11, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			//nolint:gosec // old versions on purpose: the server must refuse them
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tt.version, MaxVersion: tt.version})
			if tt.wantErr {
				if err == nil {
					_ = conn.Close()
					t.Fatalf("handshake with %s succeeded, want refused", tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().Version; got != tt.version {
				t.Errorf("negotiated version %x, want %x", got, tt.version)
			}
		})
	}
}

// TestTLSServerNoHTTP2: ALPN never selects h2 (a client offering only h2 is refused), and a client that
// would use HTTP/2 speaks HTTP/1.1.
func TestTLSServerNoHTTP2(t *testing.T) {
	addr, pool := startTLSServer(t, ServerConfig{})
	tests := []struct {
		name      string
		offer     []string
		want      string
		wantError bool
	}{
		{"h2 and http/1.1 offered", []string{"h2", "http/1.1"}, "http/1.1", false},
		{"http/1.1 offered", []string{"http/1.1"}, "http/1.1", false},
		{"nothing offered", nil, "", false},
		{"only h2 offered", []string{"h2"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: tt.offer})
			if tt.wantError {
				if err == nil {
					_ = conn.Close()
					t.Fatalf("handshake succeeded with protocol %q, want refused", conn.ConnectionState().NegotiatedProtocol)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Errorf("negotiated protocol %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("an HTTP/2-capable client", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}}
		resp, err := hc.Post("https://"+addr+echoPath, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"HTTP/1.1", "HTTP/1.1"}, []string{resp.Proto, string(body)}); diff != "" {
			t.Errorf("protocol as the client and the server see it (-want +got):\n%s", diff)
		}
	})
}

// TestTLSServerCutsSlowClients: a client that stalls in the handshake, in its headers (slowloris) or in its
// body loses its connection after the configured timeout. The tests wait for the server to close the
// connection, with a deadline of their own far beyond the timeouts as a safety net.
func TestTLSServerCutsSlowClients(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr, pool := startTLSServer(t, ServerConfig{ReadHeaderTimeout: timeout, ReadTimeout: 2 * timeout, WriteTimeout: 2 * timeout})
	const safety = 30 * time.Second
	// closedByServer waits until the server closes conn, reading (and discarding) whatever it sends first.
	closedByServer := func(t *testing.T, conn net.Conn) {
		t.Helper()
		if err := conn.SetReadDeadline(time.Now().Add(safety)); err != nil {
			t.Fatal(err)
		}
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open for %s", safety)
		}
	}
	handshake := func(t *testing.T) *tls.Conn {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	t.Run("no TLS handshake", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closedByServer(t, conn)
	})
	t.Run("headers sent slowly", func(t *testing.T) {
		conn := handshake(t)
		if _, err := io.WriteString(conn, "POST "+echoPath+" HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"); err != nil {
			t.Fatal(err)
		}
		// The rest of the headers never comes.
		closedByServer(t, conn)
	})
	t.Run("body sent slowly", func(t *testing.T) {
		conn := handshake(t)
		if _, err := io.WriteString(conn, "POST "+echoPath+" HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		closedByServer(t, conn)
	})
	t.Run("a prompt client is served", func(t *testing.T) {
		conn := handshake(t)
		if _, err := io.WriteString(conn, "POST "+echoPath+" HTTP/1.1\r\nHost: webhook\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatal(err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(safety)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})
}

// TestTLSServerStart: Start reads the certificate from CertDir, serves the registered routes, is ready for the
// started check, and returns nil when its context ends.
func TestTLSServerStart(t *testing.T) {
	certPEM, keyPEM, pool := servingCert(t)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := NewTLSServer(ServerConfig{Host: "127.0.0.1", Port: port, CertDir: dir, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if s.NeedLeaderElection() {
		t.Error("the webhook server needs leader election, want every replica to serve")
	}
	s.Register(echoPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto) }))
	check := s.StartedChecker()
	if err := check(nil); err == nil {
		t.Error("started check passes before Start")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + echoPath
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err = hc.Get(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not serve: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(req); err != nil {
		t.Errorf("started check: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v, want nil", err)
	}
}

func TestNewTLSServer(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ServerConfig
		want    ServerConfig // the timeouts and port filled in
		wantErr bool
	}{
		{
			name: "defaults",
			cfg:  ServerConfig{CertDir: "/certs"},
			want: ServerConfig{CertDir: "/certs", Port: DefaultPort, ReadHeaderTimeout: DefaultReadHeaderTimeout,
				ReadTimeout: DefaultReadTimeout, WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout},
		},
		{
			name: "set",
			cfg:  ServerConfig{CertDir: "/certs", Port: 10443, ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4},
			want: ServerConfig{CertDir: "/certs", Port: 10443, ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4},
		},
		{name: "no certificate directory", cfg: ServerConfig{}, wantErr: true},
		{name: "port out of range", cfg: ServerConfig{CertDir: "/certs", Port: 70000}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewTLSServer(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, s.cfg, cmpopts.IgnoreFields(ServerConfig{}, "Log")); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			srv := s.httpServer()
			if srv.Protocols == nil || srv.Protocols.HTTP2() || srv.Protocols.UnencryptedHTTP2() || !srv.Protocols.HTTP1() {
				t.Errorf("protocols %v, want HTTP/1.1 only", srv.Protocols)
			}
		})
	}
}
