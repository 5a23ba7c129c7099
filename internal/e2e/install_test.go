package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/webhook"
)

// TestShippedManifestsAreAccepted installs cert-manager's CRDs (from the cert-manager Go module) and
// server-side applies every object of deploy/ and certs/. Objects that would start something (the tracker's
// own Deployment, a second webhook registration pointing at a Service nothing serves) are applied with
// dryRun=All: the API server validates and admits them completely without persisting them.
func TestShippedManifestsAreAccepted(t *testing.T) {
	ctx := ctxFor(t)
	dir, err := certs.CRDPaths()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing cert-manager CRDs: %v", err)
	}
	deployObjs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	certObjs, err := certs.Objects()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range append(deployObjs, certObjs...) {
		opts := []client.PatchOption{client.FieldOwner("e2e"), client.ForceOwnership}
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		case "ValidatingWebhookConfiguration":
			// The test control plane already has it installed pointing at the tracker in this process: apply
			// the shipped one under another name so that it is validated as shipped, not merged.
			o.SetName(o.GetName() + "-as-shipped")
			opts = append(opts, client.DryRunAll)
		default:
			opts = append(opts, client.DryRunAll)
		}
		if err := env.Client.Patch(ctx, o, client.Apply, opts...); err != nil {
			t.Errorf("server-side apply of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		kinds[o.GetKind()]++
	}
	for _, k := range []string{"Deployment", "Service", "ValidatingWebhookConfiguration", "PodDisruptionBudget", "Certificate", "Issuer"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the shipped objects %v", k, kinds)
		}
	}
}

// TestRBACIsLeastPrivilege: the tracker runs with the shipped ServiceAccount's permissions only (every other
// e2e test proves it works with them); here, what it must not do.
func TestRBACIsLeastPrivilege(t *testing.T) {
	ctx := ctxFor(t)
	sa, err := client.New(env.ServiceAccountConfig(trackerNamespace, serviceAccount), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	allowed := []struct {
		name string
		do   func() error
	}{
		{"list pods", func() error { return sa.List(ctx, &corev1.PodList{}) }},
		{"get a namespace (the Slack sink's namespace annotations)", func() error {
			return sa.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		}},
		{"create a lease in its namespace", func() error {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: trackerNamespace, Name: "rbac-probe"}}
			err := sa.Create(ctx, l)
			if err == nil {
				_ = sa.Delete(ctx, l)
			}
			return err
		}},
	}
	for _, a := range allowed {
		if err := a.do(); err != nil {
			t.Errorf("%s: %v, want allowed", a.name, err)
		}
	}
	denied := []struct {
		name string
		do   func() error
	}{
		{"list secrets", func() error { return sa.List(ctx, &corev1.SecretList{}) }},
		{"read a secret in its namespace", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: trackerNamespace, Name: "github"}, &corev1.Secret{})
		}},
		{"delete a pod", func() error {
			return sa.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}})
		}},
		{"create a pod", func() error {
			p := podTemplate(nil, container("c", "busybox"))
			return sa.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: p.Spec})
		}},
		{"create a lease elsewhere", func() error {
			return sa.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}})
		}},
		{"list configmaps", func() error { return sa.List(ctx, &corev1.ConfigMapList{}) }},
		{"delete a namespace (list and watch only, for -namespace-selector)", func() error {
			return sa.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}},
		{"update a namespace", func() error {
			return sa.Update(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}},
	}
	for _, d := range denied {
		if err := d.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want forbidden", d.name, err)
		}
	}
}

// TestMalformedReviewIsAllowed sends what no API server would over the webhook's real TLS endpoint: the
// answer is always allowed, and counted.
func TestMalformedReviewIsAllowed(t *testing.T) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(env.Webhooks.LocalServingCAData) {
		t.Fatal("no webhook CA")
	}
	wo := env.WebhookServerOptions()
	url := "https://" + net.JoinHostPort(wo.Host, strconv.Itoa(wo.Port)) + webhook.Path
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	malformed := tracker.app.Metrics.Admission.WithLabelValues("", metrics.AdmissionMalformed)
	undecodable := tracker.app.Metrics.Admission.WithLabelValues("CREATE", metrics.AdmissionUndecodable)
	tests := []struct {
		name string
		body string
		uid  string
	}{
		{"not JSON", `{"apiVersion":`, ""},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, ""},
		{"pod that does not decode", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","namespace":"x","name":"p","object":{"spec":{"containers":"not a list"}}}}`, "u-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			beforeM, beforeU := testutil.ToFloat64(malformed), testutil.ToFloat64(undecodable)
			resp, err := hc.Post(url, "application/json", bytes.NewBufferString(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, decode error %v", resp.StatusCode, err)
			}
			if review.Response == nil || !review.Response.Allowed || string(review.Response.UID) != tc.uid {
				t.Errorf("response %+v, want allowed with uid %q", review.Response, tc.uid)
			}
			if testutil.ToFloat64(malformed)+testutil.ToFloat64(undecodable) != beforeM+beforeU+1 {
				t.Errorf("the request was not counted as malformed or undecodable")
			}
		})
	}
}

// TestDryRunIsNotRecorded: kubectl apply --dry-run=server reaches the webhook (the shipped configuration has
// no matchConditions), which answers it counted dry_run without observing it, and produces no record.
func TestDryRunIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	observed := tracker.app.Metrics.Admission.WithLabelValues("CREATE", metrics.AdmissionObserved)
	dryRun := tracker.app.Metrics.Admission.WithLabelValues("CREATE", metrics.AdmissionDryRun)
	before, beforeDry := testutil.ToFloat64(observed), testutil.ToFloat64(dryRun)
	p := podTemplate(nil, container("c", "ghcr.io/octo-org/dry:1"))
	if err := env.Client.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dry"}, Spec: p.Spec}, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	stayCount(t, ns, 0)
	if got := testutil.ToFloat64(observed); got != before {
		t.Errorf("a dry-run pod was observed (%v → %v)", before, got)
	}
	if got := testutil.ToFloat64(dryRun); got != beforeDry+1 {
		t.Errorf("dry-run reviews counted %v → %v, want one more", beforeDry, got)
	}
}

// TestUnknownArtifact: a digest GitHub has no attestation for is answered 404; it is not retried, and the next
// workload running it costs no call until the negative cache expires.
func TestUnknownArtifact(t *testing.T) {
	ns := newNamespace(t)
	image := "ghcr.io/octo-org/unattested:1"
	gh.UnknownArtifact("ghcr.io/octo-org/unattested", digestOf(t, image))
	defer gh.ClearUnknownArtifacts()
	m := tracker.app.Metrics
	no, hit := testutil.ToFloat64(m.PostNoAttestation), testutil.ToFloat64(m.UnknownArtifactHit)
	calls := gh.Calls()
	mustCreate(t, deployment(ns, "one", 1, container("app", image)))
	waitFor(t, "a 404", func() bool { return testutil.ToFloat64(m.PostNoAttestation) == no+1 })
	mustCreate(t, deployment(ns, "two", 1, container("app", image)))
	waitFor(t, "a negative cache hit", func() bool { return testutil.ToFloat64(m.UnknownArtifactHit) > hit })
	if got := gh.Calls() - calls; got != 1 {
		t.Errorf("%d calls to GitHub, want 1", got)
	}
	if rs := recordsIn(ns); len(rs) != 0 {
		t.Errorf("accepted %v, want nothing", rs)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := ctxFor(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestServingCertificateReloads: when cert-manager rotates the serving certificate (rewrites tls.crt and
// tls.key in the mounted Secret), the webhook serves the new one without a restart.
func TestServingCertificateReloads(t *testing.T) {
	ctx := ctxFor(t)
	dir := t.TempDir()
	first := writeServingCert(t, dir)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	in, err := startTracker(ctx, trackerSettings{webhookPort: port, certDir: dir, namespace: ns, args: []string{"-dry-run"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := in.stop(); err != nil {
			t.Error(err)
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	serves := func(ca *x509.CertPool) bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			return false
		}
		return conn.Close() == nil
	}
	if !serves(first) {
		t.Fatal("the webhook does not serve the first certificate")
	}
	second := writeServingCert(t, dir)
	waitFor(t, "the rotated certificate to be served", func() bool { return serves(second) })
	if serves(first) {
		t.Error("the old certificate is still served")
	}
}

// writeServingCert writes a new self-signed certificate for 127.0.0.1 as tls.crt/tls.key into dir, the way
// the kubelet updates a mounted Secret (a new file renamed into place), and returns a pool trusting it.
func writeServingCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "deployment-tracker-webhook"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
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
	for name, block := range map[string]*pem.Block{
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
