package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/webhook"
)

// TestWebhookHardening checks the webhook's real TLS endpoint as the tracker serves it: TLS 1.1 is refused,
// HTTP/2 is not negotiated; and a standby replica (another holder has the Lease) answers a review allowed
// without observing it.
func TestWebhookHardening(t *testing.T) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(env.Webhooks.LocalServingCAData) {
		t.Fatal("no webhook CA")
	}
	wo := env.WebhookServerOptions()
	addr := net.JoinHostPort(wo.Host, strconv.Itoa(wo.Port))

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		//nolint:gosec // TLS 1.1 on purpose: the server must refuse it
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11})
		if err == nil {
			_ = conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("HTTP/2 not negotiated", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Errorf("negotiated %q, want http/1.1", p)
		}
	})

	t.Run("a standby answers without observing", func(t *testing.T) {
		ctx := ctxFor(t)
		// Another replica holds the Lease for an hour: the instance below stays a standby.
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: trackerNamespace, Name: "deployment-tracker"}}
		if err := env.Client.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		lease.Spec = coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("another-replica"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()},
		}
		if err := env.Client.Create(ctx, lease); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.Client.Delete(ctxFor(t), lease); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}()
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		standby, err := startTracker(ctx, trackerSettings{leaderElection: true, webhookPort: port})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := standby.stop(); err != nil {
				t.Errorf("stopping the standby: %v", err)
			}
		}()
		if standby.app.Tracker.Ready() {
			t.Fatal("the standby leads")
		}
		pod := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api-1", UID: "pod-uid"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/octo-org/api:1"}}},
		}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: "review-on-a-standby", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
				Namespace: "payments", Name: "api-1", Operation: admissionv1.Create,
				Object: runtime.RawExtension{Raw: raw},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		m := standby.app.Metrics
		counted := m.Admission.WithLabelValues("CREATE", metrics.AdmissionStandby)
		observed := m.Admission.WithLabelValues("CREATE", metrics.AdmissionObserved)
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		resp, err := hc.Post("https://"+net.JoinHostPort(wo.Host, strconv.Itoa(port))+webhook.Path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, decode error %v", resp.StatusCode, err)
		}
		if review.Response == nil || !review.Response.Allowed || review.Response.UID != "review-on-a-standby" {
			t.Errorf("response %+v, want allowed with the review's uid", review.Response)
		}
		if got := []float64{testutil.ToFloat64(counted), testutil.ToFloat64(observed)}; got[0] != 1 || got[1] != 0 {
			t.Errorf("standby, observed = %v, want [1 0]", got)
		}
		var l coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lease), &l); err != nil || ptr.Deref(l.Spec.HolderIdentity, "") != "another-replica" {
			t.Errorf("the Lease changed hands during the test (%v): %v", err, l.Spec.HolderIdentity)
		}
	})
}
