package preflight

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
)

func newChecker(t *testing.T, kube *fake.Clientset, mutate func(*Config)) *Checker {
	t.Helper()
	cfg := Config{
		Tracker:         &config.Config{Org: "octo-org", BaseURL: "http://127.0.0.1:1", DryRun: true},
		Kube:            kube,
		LedgerNamespace: DefaultNamespace,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func resources(gv string, names ...string) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n, Namespaced: true})
	}
	return l
}

// wantResult checks a result's status and that its message contains every one of want.
func wantResult(t *testing.T, got Result, status Status, want ...string) {
	t.Helper()
	if got.Status != status {
		t.Errorf("status %s, want %s: %s", got.Status, status, got)
	}
	for _, w := range want {
		if !strings.Contains(got.Message, w) {
			t.Errorf("message %q lacks %q", got.Message, w)
		}
	}
}

func TestServedCRDs(t *testing.T) {
	tests := []struct {
		name      string
		resources []*metav1.APIResourceList
		ledgerOff bool
		wantCM    Status
		wantCMMsg []string
		wantLedg  Status
		wantLMsg  []string
	}{
		{
			name: "all served",
			resources: []*metav1.APIResourceList{
				resources("cert-manager.io/v1", "certificates", "certificaterequests", "issuers", "clusterissuers"),
				resources("records.deployment-tracker.io/v1alpha1", "deploymentrecords", "deploymentrecords/status", "rolloutrecords"),
			},
			wantCM: Pass, wantCMMsg: []string{"certificates.cert-manager.io, issuers.cert-manager.io served"},
			wantLedg: Pass, wantLMsg: []string{"deploymentrecords.records.deployment-tracker.io, rolloutrecords.records.deployment-tracker.io served"},
		},
		{
			name:   "nothing installed",
			wantCM: Fail, wantCMMsg: []string{"cert-manager.io/v1 is not served", "install cert-manager first", "stops half-way at the first Certificate"},
			wantLedg: Fail, wantLMsg: []string{"records.deployment-tracker.io/v1alpha1 is not served", "deploy/05-crd.yaml"},
		},
		{
			name: "partly served",
			resources: []*metav1.APIResourceList{
				resources("cert-manager.io/v1", "certificates"),
				resources("records.deployment-tracker.io/v1alpha1", "deploymentrecords"),
			},
			wantCM: Fail, wantCMMsg: []string{"served without issuers.cert-manager.io"},
			wantLedg: Fail, wantLMsg: []string{"served without rolloutrecords.records.deployment-tracker.io"},
		},
		{
			name:      "ledger off",
			resources: []*metav1.APIResourceList{resources("cert-manager.io/v1", "certificates", "issuers")},
			ledgerOff: true,
			wantCM:    Pass,
			wantLedg:  Warn, wantLMsg: []string{"-ledger-namespace=-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube := fake.NewClientset()
			kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = tt.resources
			c := newChecker(t, kube, func(cfg *Config) {
				if tt.ledgerOff {
					cfg.LedgerNamespace = ""
				}
			})
			wantResult(t, c.certManager(t.Context()), tt.wantCM, tt.wantCMMsg...)
			wantResult(t, c.ledgerCRDs(t.Context()), tt.wantLedg, tt.wantLMsg...)
		})
	}
}

func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deployment-tracker-root-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// shippedWebhook is deploy/60-webhook.yaml's configuration with caBundle set to ca.
func shippedWebhook(t *testing.T, ca []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	vwc, err := deploy.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig.CABundle = ca
	}
	return vwc
}

func TestWebhook(t *testing.T) {
	ca := testCA(t)
	service := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "deployment-tracker", Name: "deployment-tracker-webhook"}}
	tests := []struct {
		name    string
		objects func() []runtime.Object
		want    Status
		wantMsg []string
	}{
		{
			name:    "injected, Service exists",
			objects: func() []runtime.Object { return []runtime.Object{shippedWebhook(t, ca), service} },
			want:    Pass,
			wantMsg: []string{"pods.deployment-tracker.dev: caBundle injected, Service deployment-tracker/deployment-tracker-webhook exists"},
		},
		{
			name: "injected, URL",
			objects: func() []runtime.Object {
				vwc := shippedWebhook(t, ca)
				vwc.Webhooks[0].ClientConfig.Service = nil
				vwc.Webhooks[0].ClientConfig.URL = ptr.To("https://127.0.0.1:9443/validate-v1-pod")
				return []runtime.Object{vwc}
			},
			want:    Pass,
			wantMsg: []string{"calls https://127.0.0.1:9443/validate-v1-pod"},
		},
		{
			name:    "not installed",
			objects: func() []runtime.Object { return nil },
			want:    Fail,
			wantMsg: []string{"ValidatingWebhookConfiguration deployment-tracker not found", "kubectl apply -k deploy/"},
		},
		{
			name:    "CA not injected",
			objects: func() []runtime.Object { return []runtime.Object{shippedWebhook(t, nil), service} },
			want:    Fail,
			wantMsg: []string{"caBundle is empty", "Certificate deployment-tracker/deployment-tracker-serving-cert",
				"kubectl -n deployment-tracker describe certificate deployment-tracker-serving-cert"},
		},
		{
			name: "CA not injected, no annotation",
			objects: func() []runtime.Object {
				vwc := shippedWebhook(t, nil)
				vwc.Annotations = nil
				return []runtime.Object{vwc, service}
			},
			want:    Fail,
			wantMsg: []string{"caBundle is empty and there is no cert-manager.io/inject-ca-from annotation"},
		},
		{
			name: "caBundle not PEM",
			objects: func() []runtime.Object {
				return []runtime.Object{shippedWebhook(t, []byte("not a certificate")), service}
			},
			want:    Fail,
			wantMsg: []string{"caBundle holds no PEM certificate"},
		},
		{
			name:    "Service missing",
			objects: func() []runtime.Object { return []runtime.Object{shippedWebhook(t, ca)} },
			want:    Fail,
			wantMsg: []string{"Service deployment-tracker/deployment-tracker-webhook not found", "deploy/30-service.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker(t, fake.NewClientset(tt.objects()...), nil)
			wantResult(t, c.webhook(t.Context()), tt.want, tt.wantMsg...)
		})
	}
}

func TestDefaultNamesAreTheShippedOnes(t *testing.T) {
	if DefaultWebhookConfiguration != deploy.WebhookConfigurationName {
		t.Errorf("DefaultWebhookConfiguration %q, deploy/ ships %q", DefaultWebhookConfiguration, deploy.WebhookConfigurationName)
	}
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			found = true
			if o.GetNamespace() != DefaultNamespace || o.GetName() != DefaultServiceAccount {
				t.Errorf("deploy/ ships ServiceAccount %s/%s, defaults are %s/%s", o.GetNamespace(), o.GetName(), DefaultNamespace, DefaultServiceAccount)
			}
		}
	}
	if !found {
		t.Error("no ServiceAccount in deploy/")
	}
}

// reviewed is one access review the fake API server answered.
type reviewed struct {
	User        string
	Groups      []string
	Self        bool
	Namespace   string
	Verb        string
	Group       string
	Resource    string
	Subresource string
}

// authorizer makes kube answer access reviews: allowed unless deny says otherwise; every review is recorded.
func authorizer(kube *fake.Clientset, deny func(reviewed) bool, fail error) *[]reviewed {
	var got []reviewed
	answer := func(r reviewed, attrs *authorizationv1.ResourceAttributes) reviewed {
		r.Namespace, r.Verb, r.Group, r.Resource, r.Subresource = attrs.Namespace, attrs.Verb, attrs.Group, attrs.Resource, attrs.Subresource
		return r
	}
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		if fail != nil {
			return true, nil, fail
		}
		r := answer(reviewed{User: sar.Spec.User, Groups: sar.Spec.Groups}, sar.Spec.ResourceAttributes)
		got = append(got, r)
		sar.Status.Allowed = !deny(r)
		return true, sar, nil
	})
	kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ssar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		if fail != nil {
			return true, nil, fail
		}
		r := answer(reviewed{Self: true}, ssar.Spec.ResourceAttributes)
		got = append(got, r)
		ssar.Status.Allowed = !deny(r)
		return true, ssar, nil
	})
	kube.PrependReactor("create", "selfsubjectreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ssr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.SelfSubjectReview).DeepCopy()
		ssr.Status.UserInfo.Username = "jane@example.com"
		return true, ssr, nil
	})
	return &got
}

func TestRBAC(t *testing.T) {
	none := func(reviewed) bool { return false }
	tests := []struct {
		name    string
		mutate  func(*Config)
		deny    func(reviewed) bool
		fail    error
		want    Status
		wantMsg []string
		// wantScopes, if set, are the distinct namespace/group/resource the reviews ask about.
		wantScopes []string
	}{
		{
			name:    "service account, all allowed",
			mutate:  func(c *Config) { c.AsServiceAccount = true },
			deny:    none,
			want:    Pass,
			wantMsg: []string{"system:serviceaccount:deployment-tracker:deployment-tracker has all 47 permissions"},
			wantScopes: []string{
				"/pods", "/apps/replicasets", "/apps/deployments", "/apps/statefulsets", "/apps/daemonsets", "/apps/controllerrevisions",
				"/batch/jobs", "/batch/cronjobs", "/events", "/events.k8s.io/events",
				"deployment-tracker/coordination.k8s.io/leases",
				"deployment-tracker/records.deployment-tracker.io/deploymentrecords", "deployment-tracker/records.deployment-tracker.io/deploymentrecords/status",
				"deployment-tracker/records.deployment-tracker.io/rolloutrecords", "deployment-tracker/records.deployment-tracker.io/rolloutrecords/status",
			},
		},
		{
			name:    "identity in use",
			deny:    none,
			want:    Pass,
			wantMsg: []string{"jane@example.com (the identity in use) has all 47 permissions"},
		},
		{
			name:   "missing permissions, grouped",
			mutate: func(c *Config) { c.AsServiceAccount = true },
			deny: func(r reviewed) bool {
				return (r.Resource == "pods" && r.Verb != "get") || r.Resource == "leases" && r.Verb == "create"
			},
			want: Fail,
			wantMsg: []string{
				"system:serviceaccount:deployment-tracker:deployment-tracker may not: list,watch pods (all namespaces); create leases.coordination.k8s.io (in deployment-tracker)",
				"apply deploy/10-rbac.yaml",
			},
		},
		{
			name:    "nothing granted",
			mutate:  func(c *Config) { c.AsServiceAccount = true },
			deny:    func(reviewed) bool { return true },
			want:    Fail,
			wantMsg: []string{"system:serviceaccount:deployment-tracker:deployment-tracker has none of the 47 permissions the tracker needs: apply deploy/10-rbac.yaml"},
		},
		{
			name:   "many missing, bounded",
			mutate: func(c *Config) { c.AsServiceAccount = true },
			deny:   func(r reviewed) bool { return r.Group == "apps" || r.Subresource == "status" && r.Verb == "update" },
			want:   Fail,
			wantMsg: []string{"may not: get,list,watch replicasets.apps (all namespaces); get,list,watch deployments.apps (all namespaces); " +
				"get,list,watch statefulsets.apps (all namespaces); get,list,watch daemonsets.apps (all namespaces); and 3 more: apply"},
		},
		{
			name:   "status subresource",
			mutate: func(c *Config) { c.AsServiceAccount = true },
			deny: func(r reviewed) bool {
				return r.Resource == "rolloutrecords" && r.Subresource == "status" && r.Verb == "update"
			},
			want:    Fail,
			wantMsg: []string{"may not: update rolloutrecords.records.deployment-tracker.io/status (in deployment-tracker)"},
		},
		{
			name: "one namespace, no ledger, own lease namespace",
			mutate: func(c *Config) {
				c.AsServiceAccount = true
				c.Tracker.Namespace = "my-app"
				c.Tracker.LeaderElectionNamespace = "tracker"
				c.Namespace = "tracker"
				c.LedgerNamespace = ""
			},
			deny:    func(r reviewed) bool { return r.Resource == "cronjobs" && r.Verb == "watch" },
			want:    Fail,
			wantMsg: []string{"system:serviceaccount:tracker:deployment-tracker may not: watch cronjobs.batch (in my-app)", "deploy/namespaced/ in my-app"},
			wantScopes: []string{
				"my-app/pods", "my-app/apps/replicasets", "my-app/apps/deployments", "my-app/apps/statefulsets", "my-app/apps/daemonsets",
				"my-app/apps/controllerrevisions", "my-app/batch/jobs", "my-app/batch/cronjobs", "my-app/events", "my-app/events.k8s.io/events",
				"tracker/coordination.k8s.io/leases",
			},
		},
		{
			name: "ledger retention: delete of DeploymentRecords",
			mutate: func(c *Config) {
				c.AsServiceAccount = true
				c.Tracker.LedgerRetention = 7 * 24 * time.Hour
			},
			deny:    func(r reviewed) bool { return r.Resource == "deploymentrecords" && r.Verb == "delete" },
			want:    Fail,
			wantMsg: []string{"may not: delete deploymentrecords.records.deployment-tracker.io (in deployment-tracker)"},
		},
		{
			name: "ledger retention: all 48 allowed",
			mutate: func(c *Config) {
				c.AsServiceAccount = true
				c.Tracker.LedgerRetention = 7 * 24 * time.Hour
			},
			deny:    none,
			want:    Pass,
			wantMsg: []string{"has all 48 permissions"},
		},
		{
			name:    "may not reviewed",
			mutate:  func(c *Config) { c.AsServiceAccount = true },
			fail:    apierrors.NewForbidden(schema.GroupResource{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}, "", errors.New("no")),
			want:    Warn,
			wantMsg: []string{"not checked for system:serviceaccount:deployment-tracker:deployment-tracker: you may not create subjectaccessreviews", "-check-as-serviceaccount=false"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube := fake.NewClientset()
			got := authorizer(kube, tt.deny, tt.fail)
			c := newChecker(t, kube, tt.mutate)
			wantResult(t, c.rbac(t.Context()), tt.want, tt.wantMsg...)
			for _, r := range *got {
				if r.Self != !c.cfg.AsServiceAccount {
					t.Fatalf("reviewed %+v: self %v, want %v", r, r.Self, !c.cfg.AsServiceAccount)
				}
				if !r.Self {
					wantUser := "system:serviceaccount:" + c.cfg.Namespace + ":deployment-tracker"
					wantGroups := []string{"system:serviceaccounts", "system:serviceaccounts:" + c.cfg.Namespace, "system:authenticated"}
					if r.User != wantUser || !cmp.Equal(r.Groups, wantGroups) {
						t.Fatalf("reviewed as %s %v, want %s %v", r.User, r.Groups, wantUser, wantGroups)
					}
				}
			}
			if tt.wantScopes == nil {
				return
			}
			var scopes []string
			seen := map[string]bool{}
			for _, p := range c.permissions() {
				s := p.namespace + "/" + p.resource
				if p.group != "" {
					s = p.namespace + "/" + p.group + "/" + p.resource
				}
				if !seen[s] {
					seen[s] = true
					scopes = append(scopes, s)
				}
			}
			if diff := cmp.Diff(tt.wantScopes, scopes); diff != "" {
				t.Errorf("permissions checked (-want +got):\n%s", diff)
			}
			verbs := 0
			for _, p := range c.permissions() {
				verbs += len(p.verbs)
			}
			if len(*got) != verbs {
				t.Errorf("%d reviews, want one per verb: %d", len(*got), verbs)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	tests := []struct {
		name     string
		results  []Result
		wantCode int
		wantOut  string
	}{
		{
			name:     "all pass",
			results:  []Result{{Pass, "cert-manager", "served"}, {Warn, "github", "not checked"}},
			wantCode: 0,
			wantOut:  "PASS  cert-manager  served\nWARN  github        not checked\n1 passed, 1 warnings, 0 failed\n",
		},
		{
			name:     "one fails",
			results:  []Result{{Pass, "rbac", "ok"}, {Fail, "github", "ORG: not found"}},
			wantCode: 1,
			wantOut:  "PASS  rbac          ok\nFAIL  github        ORG: not found\n1 passed, 0 warnings, 1 failed\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Print(&out, tt.results); code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantOut, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunOrder(t *testing.T) {
	kube := fake.NewClientset()
	authorizer(kube, func(reviewed) bool { return false }, nil)
	c := newChecker(t, kube, nil)
	var checks []string
	for _, r := range c.Run(context.Background()) {
		checks = append(checks, r.Check)
	}
	if diff := cmp.Diff([]string{"cert-manager", "ledger CRDs", "webhook", "rbac", "github"}, checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
}

// TestRunBeforeInstall is the check on a cluster without cert-manager nor the tracker, with a workstation's
// kubeconfig: every cluster check fails and says what to do.
func TestRunBeforeInstall(t *testing.T) {
	kube := fake.NewClientset()
	authorizer(kube, func(reviewed) bool { return true }, nil)
	c := newChecker(t, kube, func(c *Config) { c.AsServiceAccount = true })
	var out bytes.Buffer
	if code := Print(&out, c.Run(t.Context())); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	t.Logf("output:\n%s", out.String())
	var statuses []Status
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		statuses = append(statuses, Status(line[:4]))
	}
	if diff := cmp.Diff([]Status{Fail, Fail, Fail, Fail, Warn, "0 pa"}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// TestAPIServerFailing: when the API server cannot be asked, every cluster check fails saying so, without
// blaming what it could not see.
func TestAPIServerFailing(t *testing.T) {
	kube := fake.NewClientset()
	kube.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	})
	for _, as := range []bool{true, false} {
		c := newChecker(t, kube, func(c *Config) { c.AsServiceAccount = as })
		for _, r := range c.Run(t.Context())[:4] {
			wantResult(t, r, Fail, "connection refused", "check -kubeconfig")
			if strings.Contains(r.Message, "install") || strings.Contains(r.Message, "apply") {
				t.Errorf("%s: blames the install: %s", r.Check, r.Message)
			}
		}
	}
}
