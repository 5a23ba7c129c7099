package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEveryLogLineIsJSON runs the binary against an API server that refuses it the leader election Lease, so
// that it logs through each of its paths: its own and controller-runtime's logger, client-go's klog (leader
// election) and net/http's server errors (a plain-HTTP request to the webhook's TLS port). Every line on stdout
// and stderr must be a JSON object.
func TestEveryLogLineIsJSON(t *testing.T) {
	bin := buildWithMake(t)
	var refused atomic.Int64
	api := httptest.NewServer(leaseRefusingAPIServer(&refused))
	defer api.Close()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: refusing
  cluster:
    server: `+api.URL+`
users:
- name: tracker
  user:
    token: not-a-real-token
contexts:
- name: refusing
  context:
    cluster: refusing
    user: tracker
current-context: refusing
`))
	webhookPort, metricsPort := freePort(t), freePort(t)
	cmd := exec.Command(bin,
		"-dry-run", "-kubeconfig="+kubeconfig,
		"-leader-elect", "-leader-election-namespace=tracker", "-ledger-namespace=-",
		"-webhook-host=127.0.0.1", "-webhook-port="+strconv.Itoa(webhookPort), "-cert-dir="+writeCertDir(t),
		"-metrics-bind-address=127.0.0.1:"+strconv.Itoa(metricsPort), "-health-probe-bind-address=0",
		"-shutdown-timeout=2s",
		// The webhook server logs connection errors (a failed handshake) at V(1): debug shows them.
		"-zap-log-level=debug",
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LOGICAL_ENVIRONMENT=test", "CLUSTER=c1"}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the tracker did not stop within 30s of SIGTERM")
		}
	}
	defer stop()
	waitForLog := func(what, substr string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(stderr.String(), substr) {
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("the tracker exited (%v) before logging %s; stderr:\n%s", err, what, stderr.String())
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s logged within 60s; stderr:\n%s", what, stderr.String())
			}
		}
	}

	waitForLog("leader election attempt (klog)", `"logger":"klog"`)
	waitForLog("webhook server start", "Serving webhook server")
	// A plain-HTTP request to the TLS port: net/http logs "http: TLS handshake error" through its ErrorLog, which
	// the webhook server turns into a V(1) line.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(webhookPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: tracker\r\n\r\n")
	_, _ = io.Copy(io.Discard, conn)
	_ = conn.Close()
	waitForLog("TLS handshake error", "TLS handshake error")

	// -metrics-bind-address is where /metrics is served.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatalf("scraping the metrics: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if !strings.Contains(string(body), "deptracker_post_record_ok ") {
		t.Errorf("/metrics on -metrics-bind-address has no deptracker_post_record_ok:\n%.2000s", body)
	}

	stop()
	if refused.Load() == 0 {
		t.Error("the tracker made no request that the API server refused")
	}
	var loggers []string
	seen := map[string]bool{}
	for _, out := range []struct {
		name string
		text string
	}{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
		sc := bufio.NewScanner(strings.NewReader(out.text))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			var entry map[string]any
			if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
				t.Errorf("%s line %d is not a JSON object (%v):\n%s", out.name, n, err, sc.Text())
				continue
			}
			if l, ok := entry["logger"].(string); ok && !seen[l] {
				seen[l] = true
				loggers = append(loggers, l)
			}
		}
		if err := sc.Err(); err != nil {
			t.Errorf("reading %s: %v", out.name, err)
		}
	}
	// The webhook server's connection errors arrive through its own logger; the standard library's log package
	// (logger stdlog: other servers' errors) is redirected too, and checked in logging_test.go.
	for _, want := range []string{"klog", "webhook-server"} {
		if !seen[want] {
			t.Errorf("no line of the %s logger; loggers seen: %v", want, loggers)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	}
}

// leaseRefusingAPIServer is an API server without objects whose RBAC lets the tracker read everything but
// Leases: it serves discovery, empty lists and idle watches, so that the tracker's caches sync and it goes on
// to leader election, and answers every other request (leases included) with 403; refused counts those.
func leaseRefusingAPIServer(refused *atomic.Int64) http.Handler {
	verbs := metav1.Verbs{"get", "list", "watch", "create", "update", "patch", "delete"}
	kinds := map[string]string{} // path of a collection → kind of its list
	resources := func(gv string, namespaced bool, kind ...string) metav1.APIResourceList {
		l := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
		prefix := "/apis/" + gv + "/"
		if gv == "v1" {
			prefix = "/api/v1/"
		}
		for _, k := range kind {
			plural := strings.ToLower(k) + "s"
			kinds[prefix+plural] = k + "List"
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name: plural, SingularName: strings.ToLower(k), Namespaced: namespaced, Kind: k, Verbs: verbs,
			})
		}
		return l
	}
	core := resources("v1", true, "Pod", "Event", "ConfigMap", "Secret", "ServiceAccount")
	core.APIResources = append(core.APIResources, resources("v1", false, "Namespace", "Node").APIResources...)
	docs := map[string]any{
		"/api": metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}},
		"/apis": metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{
			group("apps", "v1"), group("batch", "v1"), group("coordination.k8s.io", "v1"), group("events.k8s.io", "v1"),
		}},
		"/api/v1":                core,
		"/apis/apps/v1":          resources("apps/v1", true, "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"),
		"/apis/batch/v1":         resources("batch/v1", true, "Job", "CronJob"),
		"/apis/events.k8s.io/v1": resources("events.k8s.io/v1", true, "Event"),
		// Served in discovery, refused below.
		"/apis/coordination.k8s.io/v1": resources("coordination.k8s.io/v1", true, "Lease"),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			if doc, ok := docs[r.URL.Path]; ok {
				_ = json.NewEncoder(w).Encode(doc)
				return
			}
			if list, ok := kinds[r.URL.Path]; ok && !strings.HasPrefix(r.URL.Path, "/apis/coordination.k8s.io/") {
				if r.URL.Query().Get("sendInitialEvents") == "true" {
					// As an API server without the WatchList feature answers a streaming list (client-go then
					// lists instead).
					w.WriteHeader(http.StatusUnprocessableEntity)
					_ = json.NewEncoder(w).Encode(metav1.Status{
						TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
						Reason: metav1.StatusReasonInvalid, Code: http.StatusUnprocessableEntity,
						Message: "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
					})
					return
				}
				if r.URL.Query().Get("watch") == "true" {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush()
					<-r.Context().Done()
					return
				}
				apiVersion := strings.TrimPrefix(strings.TrimPrefix(path.Dir(r.URL.Path), "/apis/"), "/api/")
				if strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadataList") {
					list, apiVersion = "PartialObjectMetadataList", "meta.k8s.io/v1"
				}
				fmt.Fprintf(w, `{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"1"},"items":[]}`, list, apiVersion)
				return
			}
		}
		refused.Add(1)
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden,
			Message: fmt.Sprintf("the test API server refuses %s %s", r.Method, r.URL.Path),
		})
	})
}

func group(name, version string) metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: name + "/" + version, Version: version}
	return metav1.APIGroup{Name: name, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

// syncBuffer is a bytes.Buffer that the process writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort is a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCertDir writes a self-signed serving certificate for 127.0.0.1 as tls.crt and tls.key into a new
// directory, as cert-manager's Secret is mounted.
func writeCertDir(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "deployment-tracker"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
