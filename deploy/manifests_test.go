package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
	"github.com/deployment-tracker/deployment-tracker/internal/flux"
	"github.com/deployment-tracker/deployment-tracker/webhook"
)

// Settings of the product that the manifests must carry (see also internal/config's flag defaults).
const (
	certDir        = "/tmp/k8s-webhook-server/serving-certs"
	credentialsDir = "/var/run/secrets/github"
	githubSecret   = "deployment-tracker-github"
	containerName  = "tracker"
	webhookName    = "pods.deployment-tracker.dev"
	nonRootID      = int64(65532)
	ledgerGroup    = "records.deployment-tracker.io"
	// githubGroup is GitHubDeployment's group: users' objects, in their namespaces, not the ledger.
	githubGroup = "github.deployment-tracker.io"
	// aggregateToOwners labels the ClusterRoles aggregated into the owners' ClusterRole.
	aggregateToOwners = "deployment-tracker.io/aggregate-to-owners"
	// aggregateToUsers prefixes the labels that aggregate a ClusterRole into Kubernetes' built-in view, edit and
	// admin ClusterRoles (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles).
	aggregateToUsers = "rbac.authorization.k8s.io/aggregate-to-"
)

// strictDecoder decodes into the typed API structs and fails on unknown or duplicate fields and on kinds or
// versions it does not know.
var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		admissionregistrationv1.AddToScheme, cmapi.AddToScheme, apiextensionsv1.AddToScheme,
	} {
		utilruntime.Must(add(s))
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

func decodeStrict(u *unstructured.Unstructured) (runtime.Object, error) {
	j, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	obj, _, err := strictDecoder.Decode(j, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return obj, nil
}

// entry is one decoded object with the kind it was declared as.
type entry struct {
	kind string
	obj  metav1.Object
}

// bundle is the whole install, typed: deploy/ and certs/, plus the namespaced RBAC variant.
type bundle struct {
	order   []string // kinds of deploy.Objects(), in order
	entries []entry  // every object of deploy/ and certs/

	namespace          *corev1.Namespace
	serviceAccount     *corev1.ServiceAccount
	clusterRole        *rbacv1.ClusterRole // the tracker's own
	clusterRoleBinding *rbacv1.ClusterRoleBinding
	ownersRole         *rbacv1.ClusterRole // the aggregated owners' ClusterRole
	ownersBinding      *rbacv1.ClusterRoleBinding
	ownerRoles         []*rbacv1.ClusterRole // the shipped ClusterRoles aggregated into ownersRole
	userRoles          []*rbacv1.ClusterRole // aggregated into Kubernetes' view, edit and admin: GitHubDeployments
	role               *rbacv1.Role
	roleBinding        *rbacv1.RoleBinding
	config             *corev1.ConfigMap
	service            *corev1.Service
	deployment         *appsv1.Deployment
	pdb                *policyv1.PodDisruptionBudget
	networkPolicy      *networkingv1.NetworkPolicy
	webhook            *admissionregistrationv1.ValidatingWebhookConfiguration
	crds               map[string]*apiextensionsv1.CustomResourceDefinition // by kind
	policy             *admissionregistrationv1.ValidatingAdmissionPolicy   // GitHubDeployments' own namespace
	policyBinding      *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	certificates       map[string]*cmapi.Certificate
	issuers            map[string]*cmapi.Issuer

	namespacedRole          *rbacv1.Role
	namespacedRoleBinding   *rbacv1.RoleBinding
	namespacedOwnersBinding *rbacv1.RoleBinding // binds ownersRole in the watched namespace
}

// servingCertificate is the Certificate the webhook configuration asks cainjector to inject.
func (b *bundle) servingCertificate() (*cmapi.Certificate, error) {
	ref := b.webhook.Annotations["cert-manager.io/inject-ca-from"]
	ns, name, _ := strings.Cut(ref, "/")
	c, ok := b.certificates[name]
	if !ok || c.Namespace != ns {
		return nil, fmt.Errorf("cert-manager.io/inject-ca-from %q: no such Certificate in certs/", ref)
	}
	return c, nil
}

func (b *bundle) tracker() (*corev1.Container, error) {
	cs := b.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != containerName {
		return nil, fmt.Errorf("deployment: want exactly one container %q", containerName)
	}
	return &cs[0], nil
}

func loadBundle(t *testing.T) *bundle {
	t.Helper()
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatalf("deploy.Objects() error = %v", err)
	}
	certObjs, err := certs.Objects()
	if err != nil {
		t.Fatalf("certs.Objects() error = %v", err)
	}
	b := &bundle{certificates: map[string]*cmapi.Certificate{}, issuers: map[string]*cmapi.Issuer{},
		crds: map[string]*apiextensionsv1.CustomResourceDefinition{}}
	for _, u := range objs {
		b.order = append(b.order, u.GetKind())
	}
	one := func(kind string, isSet bool) {
		if isSet {
			t.Fatalf("more than one %s in deploy/", kind)
		}
	}
	var clusterRoleBindings []*rbacv1.ClusterRoleBinding
	for _, u := range append(objs, certObjs...) {
		obj, err := decodeStrict(u)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			one(u.GetKind(), b.namespace != nil)
			b.namespace = o
		case *corev1.ServiceAccount:
			one(u.GetKind(), b.serviceAccount != nil)
			b.serviceAccount = o
		case *rbacv1.ClusterRole:
			switch {
			case o.AggregationRule != nil:
				one("aggregated ClusterRole", b.ownersRole != nil)
				b.ownersRole = o
			case o.Labels[aggregateToOwners] == "true":
				b.ownerRoles = append(b.ownerRoles, o)
			case aggregatedToUsers(o):
				b.userRoles = append(b.userRoles, o)
			default:
				one(u.GetKind(), b.clusterRole != nil)
				b.clusterRole = o
			}
		case *rbacv1.ClusterRoleBinding:
			clusterRoleBindings = append(clusterRoleBindings, o)
		case *rbacv1.Role:
			one(u.GetKind(), b.role != nil)
			b.role = o
		case *rbacv1.RoleBinding:
			one(u.GetKind(), b.roleBinding != nil)
			b.roleBinding = o
		case *corev1.ConfigMap:
			one(u.GetKind(), b.config != nil)
			b.config = o
		case *corev1.Service:
			one(u.GetKind(), b.service != nil)
			b.service = o
		case *appsv1.Deployment:
			one(u.GetKind(), b.deployment != nil)
			b.deployment = o
		case *policyv1.PodDisruptionBudget:
			one(u.GetKind(), b.pdb != nil)
			b.pdb = o
		case *networkingv1.NetworkPolicy:
			one(u.GetKind(), b.networkPolicy != nil)
			b.networkPolicy = o
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			one(u.GetKind(), b.webhook != nil)
			b.webhook = o
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			one(u.GetKind(), b.policy != nil)
			b.policy = o
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			one(u.GetKind(), b.policyBinding != nil)
			b.policyBinding = o
		case *apiextensionsv1.CustomResourceDefinition:
			one("CustomResourceDefinition of "+o.Spec.Names.Kind, b.crds[o.Spec.Names.Kind] != nil)
			b.crds[o.Spec.Names.Kind] = o
		case *cmapi.Certificate:
			b.certificates[o.Name] = o
		case *cmapi.Issuer:
			b.issuers[o.Name] = o
		default:
			t.Fatalf("%s %s: a kind the tests do not check", u.GetKind(), u.GetName())
		}
		b.entries = append(b.entries, entry{kind: u.GetKind(), obj: obj.(metav1.Object)})
	}
	for _, crb := range clusterRoleBindings {
		if b.ownersRole != nil && crb.RoleRef.Kind == "ClusterRole" && crb.RoleRef.Name == b.ownersRole.Name {
			one("ClusterRoleBinding of "+b.ownersRole.Name, b.ownersBinding != nil)
			b.ownersBinding = crb
			continue
		}
		one("ClusterRoleBinding", b.clusterRoleBinding != nil)
		b.clusterRoleBinding = crb
	}
	if b.namespace == nil || b.serviceAccount == nil || b.clusterRole == nil || b.clusterRoleBinding == nil ||
		b.ownersRole == nil || b.ownersBinding == nil || b.role == nil || b.roleBinding == nil || b.config == nil ||
		b.service == nil || b.deployment == nil || b.pdb == nil || b.networkPolicy == nil || b.webhook == nil ||
		b.crds["DeploymentRecord"] == nil || b.crds["RolloutRecord"] == nil || b.crds["GitHubDeployment"] == nil ||
		b.policy == nil || b.policyBinding == nil {
		t.Fatalf("deploy/ lacks an object: %+v", b)
	}

	data, err := os.ReadFile(filepath.Join("namespaced", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nsObjs, err := manifest.Parse(data)
	if err != nil {
		t.Fatalf("namespaced/rbac.yaml: %v", err)
	}
	for _, u := range nsObjs {
		obj, err := decodeStrict(u)
		if err != nil {
			t.Fatalf("namespaced/rbac.yaml: %v", err)
		}
		switch o := obj.(type) {
		case *rbacv1.Role:
			b.namespacedRole = o
		case *rbacv1.RoleBinding:
			if o.RoleRef.Kind == "ClusterRole" {
				b.namespacedOwnersBinding = o
			} else {
				b.namespacedRoleBinding = o
			}
		default:
			t.Fatalf("namespaced/rbac.yaml: %s %s: a kind the tests do not check", u.GetKind(), u.GetName())
		}
	}
	if b.namespacedRole == nil || b.namespacedRoleBinding == nil || b.namespacedOwnersBinding == nil {
		t.Fatal("namespaced/rbac.yaml: want a Role, its RoleBinding, and a RoleBinding of the owners' ClusterRole")
	}
	return b
}

// aggregatedToUsers reports whether r carries a label that aggregates it into Kubernetes' view, edit or admin
// ClusterRole.
func aggregatedToUsers(r *rbacv1.ClusterRole) bool {
	for k, v := range r.Labels {
		if strings.HasPrefix(k, aggregateToUsers) && v == "true" {
			return true
		}
	}
	return false
}

// check is one consistency rule over the whole install; it returns every violation it finds.
type check struct {
	name string
	fn   func(b *bundle) error
}

var checks = []check{
	{"apply order", checkApplyOrder},
	{"one namespace", checkNamespaces},
	{"serving certificate covers the service", checkCertificateDNSNames},
	{"serving certificate secret is the cert dir", checkCertificateSecretMounted},
	{"inject-ca-from names the mounted certificate", checkInjectCAFrom},
	{"webhook calls the service", checkWebhookClientConfig},
	{"service targets the webhook container port", checkServiceTargetPort},
	{"probes use container ports", checkProbes},
	{"webhook observes and fails open", checkWebhookPolicy},
	{"webhook skips its own namespace and kube-system", checkWebhookNamespaceSelector},
	{"network policy admits the webhook from anywhere, metrics from labelled namespaces", checkNetworkPolicy},
	{"pod security is hardened", checkSecurityContext},
	{"RBAC grants no secrets and no wildcards", checkRBACLeastPrivilege},
	{"RBAC rules are the documented ones", checkRBACRules},
	{"owners' ClusterRole aggregates the shipped owner roles", checkOwnersAggregation},
	{"the ledger stays in the tracker's namespace", checkLedgerNamespaced},
	{"GitHubDeployments: users write the spec, the tracker the status", checkGitHubDeployments},
	{"users' ClusterRoles extend view, edit and admin with GitHubDeployments", checkUserRoles},
	{"a GitHubDeployment reports only its own namespace", checkGitHubDeploymentPolicy},
	{"bindings bind the deployment's service account", checkBindings},
	{"labels and selectors match", checkSelectors},
	{"configuration reaches the container", checkConfiguration},
	{"GitHub credentials are optional files", checkCredentials},
	{"deployment shape", checkDeploymentShape},
}

func TestManifests(t *testing.T) {
	b := loadBundle(t)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(b); err != nil {
				t.Error(err)
			}
		})
	}
}

func checkApplyOrder(b *bundle) error {
	rank := map[string]int{
		"Namespace": 0, "CustomResourceDefinition": 1, "ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1,
		"ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2,
		"ConfigMap": 3, "Service": 4, "NetworkPolicy": 4, "Deployment": 5, "PodDisruptionBudget": 6, "ValidatingWebhookConfiguration": 7,
	}
	var errs []error
	last := -1
	for i, kind := range b.order {
		r, ok := rank[kind]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("object %d: kind %s has no place in the apply order", i, kind))
		case r < last:
			errs = append(errs, fmt.Errorf("object %d: %s comes after a kind that must follow it (order %v)", i, kind, b.order))
		default:
			last = r
		}
	}
	return errors.Join(errs...)
}

func checkNamespaces(b *bundle) error {
	clusterScoped := map[string]bool{
		"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "ValidatingWebhookConfiguration": true,
		"CustomResourceDefinition": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	}
	var errs []error
	for _, e := range b.entries {
		ns := e.obj.GetNamespace()
		switch {
		case clusterScoped[e.kind] && ns != "":
			errs = append(errs, fmt.Errorf("%s %s: cluster-scoped but has namespace %q", e.kind, e.obj.GetName(), ns))
		case !clusterScoped[e.kind] && ns != b.namespace.Name:
			errs = append(errs, fmt.Errorf("%s %s: namespace %q, want %q", e.kind, e.obj.GetName(), ns, b.namespace.Name))
		}
	}
	return errors.Join(errs...)
}

func checkCertificateDNSNames(b *bundle) error {
	cert, err := b.servingCertificate()
	if err != nil {
		return err
	}
	svc := b.service
	want := []string{
		svc.Name,
		svc.Name + "." + svc.Namespace,
		svc.Name + "." + svc.Namespace + ".svc",
		svc.Name + "." + svc.Namespace + ".svc.cluster.local",
	}
	var errs []error
	if diff := cmp.Diff(want, cert.Spec.DNSNames); diff != "" {
		errs = append(errs, fmt.Errorf("certificate %s dnsNames do not name Service %s/%s (-want +got):\n%s", cert.Name, svc.Namespace, svc.Name, diff))
	}
	if cert.Namespace != svc.Namespace {
		errs = append(errs, fmt.Errorf("certificate %s in namespace %q, Service in %q", cert.Name, cert.Namespace, svc.Namespace))
	}
	return errors.Join(errs...)
}

func checkCertificateSecretMounted(b *bundle) error {
	cert, err := b.servingCertificate()
	if err != nil {
		return err
	}
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range c.Args {
		if strings.HasPrefix(strings.TrimLeft(a, "-"), "cert-dir") {
			errs = append(errs, fmt.Errorf("args set %s: the mount assumes the default %s", a, certDir))
		}
	}
	var vol *corev1.Volume
	for i, v := range b.deployment.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName {
			vol = &b.deployment.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return errors.Join(append(errs, fmt.Errorf("no volume of Secret %q (certificate %s)", cert.Spec.SecretName, cert.Name))...)
	}
	if vol.Secret.Optional != nil && *vol.Secret.Optional {
		errs = append(errs, fmt.Errorf("volume %s: the serving certificate must not be optional", vol.Name))
	}
	idx := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol.Name })
	switch {
	case idx < 0:
		errs = append(errs, fmt.Errorf("volume %s is not mounted", vol.Name))
	case c.VolumeMounts[idx].MountPath != certDir || !c.VolumeMounts[idx].ReadOnly || c.VolumeMounts[idx].SubPath != "":
		errs = append(errs, fmt.Errorf("volume %s mounted as %+v, want read-only at %s", vol.Name, c.VolumeMounts[idx], certDir))
	}
	return errors.Join(errs...)
}

func checkInjectCAFrom(b *bundle) error {
	c, err := b.tracker()
	if err != nil {
		return err
	}
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == certDir })
	if mi < 0 {
		return fmt.Errorf("nothing mounted at %s", certDir)
	}
	vi := slices.IndexFunc(b.deployment.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mi].Name })
	if vi < 0 || b.deployment.Spec.Template.Spec.Volumes[vi].Secret == nil {
		return fmt.Errorf("the volume at %s is not a Secret", certDir)
	}
	secret := b.deployment.Spec.Template.Spec.Volumes[vi].Secret.SecretName
	var want []string
	for _, cert := range b.certificates {
		if cert.Spec.SecretName == secret && cert.Namespace == b.deployment.Namespace {
			want = append(want, cert.Namespace+"/"+cert.Name)
		}
	}
	got := b.webhook.Annotations["cert-manager.io/inject-ca-from"]
	if len(want) != 1 || got != want[0] {
		return fmt.Errorf("cert-manager.io/inject-ca-from %q, want the Certificate of Secret %s mounted at %s: %v", got, secret, certDir, want)
	}
	return nil
}

func checkWebhookClientConfig(b *bundle) error {
	if len(b.webhook.Webhooks) != 1 {
		return fmt.Errorf("want exactly one webhook, got %d", len(b.webhook.Webhooks))
	}
	w := b.webhook.Webhooks[0]
	var errs []error
	if w.Name != webhookName {
		errs = append(errs, fmt.Errorf("webhook name %q, want %q", w.Name, webhookName))
	}
	if len(w.ClientConfig.CABundle) > 0 {
		errs = append(errs, errors.New("caBundle is set: cainjector owns it"))
	}
	s := w.ClientConfig.Service
	if s == nil || w.ClientConfig.URL != nil {
		return errors.Join(append(errs, errors.New("clientConfig must name a service, not a URL"))...)
	}
	if s.Name != b.service.Name || s.Namespace != b.service.Namespace {
		errs = append(errs, fmt.Errorf("clientConfig.service %s/%s, Service is %s/%s", s.Namespace, s.Name, b.service.Namespace, b.service.Name))
	}
	port := int32(443)
	if s.Port != nil {
		port = *s.Port
	}
	if !slices.ContainsFunc(b.service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
		errs = append(errs, fmt.Errorf("clientConfig.service.port %d is not a port of Service %s", port, b.service.Name))
	}
	if s.Path == nil || *s.Path != webhook.Path {
		errs = append(errs, fmt.Errorf("clientConfig.service.path %v, want the handler's %s", s.Path, webhook.Path))
	}
	return errors.Join(errs...)
}

func checkServiceTargetPort(b *bundle) error {
	c, err := b.tracker()
	if err != nil {
		return err
	}
	if len(b.service.Spec.Ports) != 1 {
		return fmt.Errorf("service %s: want one port, got %d", b.service.Name, len(b.service.Spec.Ports))
	}
	p := b.service.Spec.Ports[0]
	var errs []error
	if p.Port != 443 || p.Name != "webhook" {
		errs = append(errs, fmt.Errorf("service port %s/%d, want webhook/443", p.Name, p.Port))
	}
	if p.TargetPort.Type != intstr.String {
		return errors.Join(append(errs, fmt.Errorf("service targetPort %s: use the container port's name", p.TargetPort.String()))...)
	}
	idx := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal })
	switch {
	case idx < 0:
		errs = append(errs, fmt.Errorf("service targetPort %q is not a port of container %s", p.TargetPort.StrVal, c.Name))
	case c.Ports[idx].ContainerPort != 9443:
		errs = append(errs, fmt.Errorf("container port %s is %d, the tracker's -webhook-port default is 9443", c.Ports[idx].Name, c.Ports[idx].ContainerPort))
	}
	return errors.Join(errs...)
}

func checkProbes(b *bundle) error {
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			errs = append(errs, fmt.Errorf("%s: want an httpGet probe", p.name))
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			errs = append(errs, fmt.Errorf("%s: path %q, want %q", p.name, g.Path, p.path))
		}
		idx := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return (g.Port.Type == intstr.String && cp.Name == g.Port.StrVal) || (g.Port.Type == intstr.Int && cp.ContainerPort == g.Port.IntVal)
		})
		switch {
		case idx < 0:
			errs = append(errs, fmt.Errorf("%s: port %s is not a container port", p.name, g.Port.String()))
		case c.Ports[idx].ContainerPort != 8081 || c.Ports[idx].Name != "health":
			errs = append(errs, fmt.Errorf("%s: port %s/%d, want health/8081 (-health-probe-bind-address default)", p.name, c.Ports[idx].Name, c.Ports[idx].ContainerPort))
		}
	}
	return errors.Join(errs...)
}

func checkWebhookPolicy(b *bundle) error {
	var errs []error
	for _, w := range b.webhook.Webhooks {
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore {
			errs = append(errs, fmt.Errorf("%s: failurePolicy must be Ignore: the tracker must never block pods", w.Name))
		}
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			errs = append(errs, fmt.Errorf("%s: sideEffects must be None", w.Name))
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds > 3 {
			errs = append(errs, fmt.Errorf("%s: timeoutSeconds %v, want at most 3", w.Name, w.TimeoutSeconds))
		}
		if diff := cmp.Diff([]string{"v1"}, w.AdmissionReviewVersions); diff != "" {
			errs = append(errs, fmt.Errorf("%s: admissionReviewVersions (-want +got):\n%s", w.Name, diff))
		}
		all := admissionregistrationv1.AllScopes
		want := []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Delete},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &all,
			},
		}}
		if diff := cmp.Diff(want, w.Rules); diff != "" {
			errs = append(errs, fmt.Errorf("%s: rules (-want +got):\n%s", w.Name, diff))
		}
		if w.ObjectSelector != nil && (len(w.ObjectSelector.MatchLabels) > 0 || len(w.ObjectSelector.MatchExpressions) > 0) {
			errs = append(errs, fmt.Errorf("%s: an objectSelector would hide pods from the tracker", w.Name))
		}
	}
	return errors.Join(errs...)
}

func checkWebhookNamespaceSelector(b *bundle) error {
	var errs []error
	for _, w := range b.webhook.Webhooks {
		if w.NamespaceSelector == nil {
			errs = append(errs, fmt.Errorf("%s: no namespaceSelector", w.Name))
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: namespaceSelector: %w", w.Name, err))
			continue
		}
		for ns, want := range map[string]bool{b.namespace.Name: false, "kube-system": false, "default": true, "shop": true} {
			// The API server labels every namespace with kubernetes.io/metadata.name.
			if got := sel.Matches(labels.Set{corev1.LabelMetadataName: ns}); got != want {
				errs = append(errs, fmt.Errorf("%s: namespaceSelector matches namespace %s = %t, want %t", w.Name, ns, got, want))
			}
		}
	}
	return errors.Join(errs...)
}

// metricsScrapers labels the namespaces whose pods may scrape the tracker's metrics (35-networkpolicy.yaml).
const metricsScrapers = "deployment-tracker.io/scrape-metrics"

// checkNetworkPolicy: the NetworkPolicy selects the tracker's pods for ingress only; the webhook port is open
// to any source (the API server is not a pod: no selector names it), the metrics port only to namespaces
// labelled metricsScrapers, the health port to no one (the kubelet's probes come from the node, always
// allowed), and no rule admits every port.
func checkNetworkPolicy(b *bundle) error {
	np := b.networkPolicy
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("NetworkPolicy: "+format, args...)) }
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(b.deployment.Spec.Template.Labels)) {
		bad("podSelector %v does not select the tracker's pods (%v)", sel, err)
	}
	if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes); diff != "" {
		bad("policyTypes (-want +got), ingress only (README: why not egress):\n%s", diff)
	}
	if len(np.Spec.Egress) != 0 {
		bad("egress rules without Egress in policyTypes")
	}
	c, err := b.tracker()
	if err != nil {
		return err
	}
	// covers reports whether rule admits the container port cp.
	covers := func(rule networkingv1.NetworkPolicyIngressRule, cp corev1.ContainerPort) bool {
		if len(rule.Ports) == 0 {
			return true
		}
		for _, p := range rule.Ports {
			if p.Protocol != nil && *p.Protocol != cp.Protocol {
				continue
			}
			switch {
			case p.Port == nil:
				return true
			case p.Port.Type == intstr.String && p.Port.StrVal == cp.Name:
				return true
			case p.Port.Type == intstr.Int && (p.Port.IntVal == cp.ContainerPort ||
				p.EndPort != nil && p.Port.IntVal <= cp.ContainerPort && cp.ContainerPort <= *p.EndPort):
				return true
			}
		}
		return false
	}
	wantFrom := map[string][]networkingv1.NetworkPolicyPeer{
		"webhook": nil, // any source
		"metrics": {{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{metricsScrapers: "true"}}}},
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			bad("ingress rule %d admits every port", i)
		}
	}
	for _, cp := range c.Ports {
		var rules []networkingv1.NetworkPolicyIngressRule
		for _, rule := range np.Spec.Ingress {
			if covers(rule, cp) {
				rules = append(rules, rule)
			}
		}
		want, open := wantFrom[cp.Name]
		switch {
		case !open && len(rules) > 0:
			bad("port %s/%d is admitted, want no rule", cp.Name, cp.ContainerPort)
		case open && len(rules) != 1:
			bad("port %s/%d is admitted by %d rules, want 1", cp.Name, cp.ContainerPort, len(rules))
		case open:
			if diff := cmp.Diff(want, rules[0].From); diff != "" {
				bad("sources of port %s (-want +got):\n%s", cp.Name, diff)
			}
		}
	}
	return errors.Join(errs...)
}

func checkSecurityContext(b *bundle) error {
	spec := b.deployment.Spec.Template.Spec
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	is := func(p *bool, want bool) bool { return p != nil && *p == want }

	if b.namespace.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		bad("namespace %s: want label pod-security.kubernetes.io/enforce=restricted", b.namespace.Name)
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if !is(psc.RunAsNonRoot, true) {
		bad("pod: runAsNonRoot must be true")
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != nonRootID || psc.RunAsGroup == nil || *psc.RunAsGroup != nonRootID {
		bad("pod: runAsUser and runAsGroup must be %d (distroless nonroot)", nonRootID)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("pod: seccompProfile must be RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		bad("pod: no host namespaces")
	}
	if !is(spec.AutomountServiceAccountToken, true) {
		bad("pod: automountServiceAccountToken must be true (the tracker calls the API)")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			bad("volume %s: no hostPath", v.Name)
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if !is(sc.AllowPrivilegeEscalation, false) {
		bad("container: allowPrivilegeEscalation must be false")
	}
	if !is(sc.ReadOnlyRootFilesystem, true) {
		bad("container: readOnlyRootFilesystem must be true")
	}
	if is(sc.Privileged, true) {
		bad("container: must not be privileged")
	}
	if sc.RunAsUser != nil || sc.RunAsGroup != nil || is(sc.RunAsNonRoot, false) || sc.SeccompProfile != nil {
		bad("container: leave runAsUser, runAsGroup, runAsNonRoot and seccompProfile to the pod")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		bad("container: capabilities must drop ALL and add none")
	}
	return errors.Join(errs...)
}

func allRules(b *bundle) map[string][]rbacv1.PolicyRule {
	all := map[string][]rbacv1.PolicyRule{
		"ClusterRole " + b.clusterRole.Name:                       b.clusterRole.Rules,
		"ClusterRole " + b.ownersRole.Name:                        b.ownersRole.Rules,
		"Role " + b.role.Name:                                     b.role.Rules,
		"Role " + b.namespacedRole.Name + " (namespaced variant)": b.namespacedRole.Rules,
	}
	for _, r := range b.ownerRoles {
		all["ClusterRole "+r.Name] = r.Rules
	}
	return all
}

// deletable are the resources the tracker may delete, in the tracker's Role only: its own ledger's kinds, for
// their retention (old rollouts; DeploymentRecords decommissioned and delivered, -ledger-retention).
var deletable = []rbacv1.PolicyRule{
	{APIGroups: []string{ledgerGroup}, Resources: []string{"deploymentrecords"}},
	{APIGroups: []string{ledgerGroup}, Resources: []string{"rolloutrecords"}},
}

func checkRBACLeastPrivilege(b *bundle) error {
	var errs []error
	if b.clusterRole.AggregationRule != nil {
		errs = append(errs, errors.New("the ClusterRole must not aggregate other roles"))
	}
	for _, r := range b.ownerRoles {
		for i, rule := range r.Rules {
			if !slices.Equal(rule.Verbs, []string{"get"}) {
				errs = append(errs, fmt.Errorf("ClusterRole %s rule %d: verbs %v, want get only (a single read of an owner's metadata)", r.Name, i, rule.Verbs))
			}
		}
	}
	for owner, rules := range allRules(b) {
		for i, r := range rules {
			for field, values := range map[string][]string{"apiGroups": r.APIGroups, "resources": r.Resources, "verbs": r.Verbs} {
				for _, v := range values {
					if strings.Contains(v, "*") {
						errs = append(errs, fmt.Errorf("%s rule %d: wildcard %q in %s", owner, i, v, field))
					}
				}
			}
			for _, res := range r.Resources {
				if res == "secrets" || strings.HasPrefix(res, "secrets/") {
					errs = append(errs, fmt.Errorf("%s rule %d: grants %v on secrets", owner, i, r.Verbs))
				}
			}
			if len(r.NonResourceURLs) > 0 {
				errs = append(errs, fmt.Errorf("%s rule %d: nonResourceURLs", owner, i))
			}
			for _, v := range r.Verbs {
				pruning := v == "delete" && owner == "Role "+b.role.Name && slices.ContainsFunc(deletable, func(d rbacv1.PolicyRule) bool {
					return slices.Equal(r.APIGroups, d.APIGroups) && slices.Equal(r.Resources, d.Resources)
				})
				if v == "escalate" || v == "bind" || v == "impersonate" || v == "delete" && !pruning || v == "deletecollection" {
					errs = append(errs, fmt.Errorf("%s rule %d: verb %s", owner, i, v))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func checkRBACRules(b *bundle) error {
	read := []string{"get", "list", "watch"}
	wantCluster := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "deployments", "statefulsets", "daemonsets", "controllerrevisions"}, Verbs: read},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: read},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{githubGroup}, Resources: []string{"githubdeployments"}, Verbs: read},
		{APIGroups: []string{githubGroup}, Resources: []string{"githubdeployments/status"}, Verbs: []string{"get", "update", "patch"}},
		// Flux: Kustomizations watched, their GitRepositories read one at a time.
		{APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories"}, Verbs: []string{"get"}},
	}
	// The Slack sink reads namespaces with a single GET, -namespace-selector watches their metadata; a Role
	// cannot grant it, so the namespaced variant has every rule of the ClusterRole but this one.
	namespaces := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}
	wantNamespaced := slices.Clone(wantCluster)
	wantCluster = append(wantCluster, namespaces)
	wantLeases := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		{APIGroups: []string{"records.deployment-tracker.io"}, Resources: []string{"deploymentrecords"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
		{APIGroups: []string{"records.deployment-tracker.io"}, Resources: []string{"deploymentrecords/status"}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"records.deployment-tracker.io"}, Resources: []string{"rolloutrecords"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
		{APIGroups: []string{"records.deployment-tracker.io"}, Resources: []string{"rolloutrecords/status"}, Verbs: []string{"get", "update"}},
		// The Flux ledger: one ConfigMap, by name but for create.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{flux.LedgerName}, Verbs: []string{"get", "update"}},
	}
	wantOwners := map[string][]rbacv1.PolicyRule{
		"deployment-tracker-owners-argo-rollouts": {{APIGroups: []string{"argoproj.io"}, Resources: []string{"rollouts"}, Verbs: []string{"get"}}},
	}
	gotOwners := map[string][]rbacv1.PolicyRule{}
	for _, r := range b.ownerRoles {
		gotOwners[r.Name] = r.Rules
	}
	var errs []error
	if diff := cmp.Diff(wantOwners, gotOwners); diff != "" {
		errs = append(errs, fmt.Errorf("shipped owner ClusterRoles' rules (-want +got):\n%s", diff))
	}
	if diff := cmp.Diff(wantCluster, b.clusterRole.Rules); diff != "" {
		errs = append(errs, fmt.Errorf("ClusterRole %s rules (-want +got):\n%s", b.clusterRole.Name, diff))
	}
	if diff := cmp.Diff(wantLeases, b.role.Rules); diff != "" {
		errs = append(errs, fmt.Errorf("Role %s rules (-want +got):\n%s", b.role.Name, diff))
	}
	if diff := cmp.Diff(wantNamespaced, b.namespacedRole.Rules); diff != "" {
		errs = append(errs, fmt.Errorf("namespaced/rbac.yaml: Role %s rules differ from the ClusterRole's without namespaces (-want +namespaced):\n%s", b.namespacedRole.Name, diff))
	}
	return errors.Join(errs...)
}

// checkOwnersAggregation: the owners' ClusterRole has no rules of its own (the aggregation controller owns them)
// and selects exactly the label users put on their own owner roles; every shipped owner role carries it.
func checkOwnersAggregation(b *bundle) error {
	var errs []error
	want := &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{aggregateToOwners: "true"}}}}
	if diff := cmp.Diff(want, b.ownersRole.AggregationRule); diff != "" {
		errs = append(errs, fmt.Errorf("ClusterRole %s aggregationRule (-want +got):\n%s", b.ownersRole.Name, diff))
	}
	if len(b.ownersRole.Rules) > 0 {
		errs = append(errs, fmt.Errorf("ClusterRole %s: rules of its own %v; the aggregation controller overwrites them", b.ownersRole.Name, b.ownersRole.Rules))
	}
	if len(b.ownerRoles) == 0 {
		errs = append(errs, errors.New("no shipped owner ClusterRole"))
	}
	for _, r := range slices.Concat(b.ownerRoles, []*rbacv1.ClusterRole{b.clusterRole}) {
		shipped := r != b.clusterRole
		selected := false
		for _, ls := range b.ownersRole.AggregationRule.ClusterRoleSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&ls)
			if err != nil {
				errs = append(errs, fmt.Errorf("ClusterRole %s clusterRoleSelector: %w", b.ownersRole.Name, err))
				continue
			}
			selected = selected || !sel.Empty() && sel.Matches(labels.Set(r.Labels))
		}
		if selected != shipped {
			errs = append(errs, fmt.Errorf("ClusterRole %s (labels %v) aggregated into %s: %t, want %t", r.Name, r.Labels, b.ownersRole.Name, selected, shipped))
		}
		if prefix := b.ownersRole.Name + "-"; shipped && !strings.HasPrefix(r.Name, prefix) {
			errs = append(errs, fmt.Errorf("ClusterRole %s: name it %s<kind>", r.Name, prefix))
		}
	}
	return errors.Join(errs...)
}

// checkLedgerNamespaced: the ledger's kinds are namespaced, with a status subresource, and the tracker may use
// them in its own namespace only: every ledger resource is granted by the Role in the tracker's namespace, and
// by nothing cluster-wide or in the watched namespace.
func checkLedgerNamespaced(b *bundle) error {
	var errs []error
	granted := map[string]bool{}
	for _, r := range b.role.Rules {
		if slices.Contains(r.APIGroups, ledgerGroup) {
			for _, res := range r.Resources {
				granted[res] = true
			}
		}
	}
	if b.role.Namespace != b.namespace.Name || b.roleBinding.Namespace != b.namespace.Name {
		errs = append(errs, fmt.Errorf("Role %s and its binding in %q/%q, want the tracker's namespace %s", b.role.Name, b.role.Namespace,
			b.roleBinding.Namespace, b.namespace.Name))
	}
	for _, kind := range []string{"DeploymentRecord", "RolloutRecord"} {
		crd := b.crds[kind]
		if crd.Spec.Group != ledgerGroup || crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
			errs = append(errs, fmt.Errorf("CRD %s: group %s, scope %s; want %s, Namespaced", crd.Name, crd.Spec.Group, crd.Spec.Scope, ledgerGroup))
		}
		if !slices.Contains(crd.Spec.Names.Categories, "deployment-tracker") {
			errs = append(errs, fmt.Errorf("CRD %s: not in the category deployment-tracker", crd.Name))
		}
		for _, v := range crd.Spec.Versions {
			if v.Subresources == nil || v.Subresources.Status == nil {
				errs = append(errs, fmt.Errorf("CRD %s version %s: no status subresource", crd.Name, v.Name))
			}
		}
		for _, res := range []string{crd.Spec.Names.Plural, crd.Spec.Names.Plural + "/status"} {
			if !granted[res] {
				errs = append(errs, fmt.Errorf("Role %s: grants nothing on %s", b.role.Name, res))
			}
		}
	}
	if got := b.crds["RolloutRecord"].Spec.Names.ShortNames; !slices.Equal(got, []string{"rollrec"}) {
		errs = append(errs, fmt.Errorf("RolloutRecord shortNames %v, want [rollrec]", got))
	}
	for owner, rules := range allRules(b) {
		if owner == "Role "+b.role.Name {
			continue
		}
		for i, r := range rules {
			if slices.Contains(r.APIGroups, ledgerGroup) {
				errs = append(errs, fmt.Errorf("%s rule %d: grants %v on the ledger outside the tracker's namespace", owner, i, r.Resources))
			}
		}
	}
	return errors.Join(errs...)
}

// checkGitHubDeployments: GitHubDeployment is a namespaced kind of users, beside their workloads, in the
// category deployment-tracker, with a status subresource the tracker writes. The tracker reads the objects
// wherever it reads workloads (the ClusterRole, or the Role of the watched namespace) and never writes their
// spec; its Role in its own namespace (the ledger's) grants nothing on them. The spec's validation is what the
// README promises.
func checkGitHubDeployments(b *bundle) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	crd := b.crds["GitHubDeployment"]
	if crd.Spec.Group != githubGroup || crd.Spec.Scope != apiextensionsv1.NamespaceScoped || crd.Spec.Names.Plural != "githubdeployments" {
		bad("CRD %s: group %s, scope %s, plural %s; want %s, Namespaced, githubdeployments", crd.Name, crd.Spec.Group, crd.Spec.Scope,
			crd.Spec.Names.Plural, githubGroup)
	}
	if !slices.Equal(crd.Spec.Names.ShortNames, []string{"ghd"}) || !slices.Contains(crd.Spec.Names.Categories, "deployment-tracker") {
		bad("CRD %s: shortNames %v, categories %v; want [ghd] and deployment-tracker", crd.Name, crd.Spec.Names.ShortNames, crd.Spec.Names.Categories)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
		return errors.Join(append(errs, fmt.Errorf("CRD %s: want the one version v1alpha1", crd.Name))...)
	}
	v := crd.Spec.Versions[0]
	if v.Subresources == nil || v.Subresources.Status == nil {
		bad("CRD %s: no status subresource (users could write the tracker's status with the spec)", crd.Name)
	}
	var columns []string
	for _, c := range v.AdditionalPrinterColumns {
		if c.Priority == 0 {
			columns = append(columns, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Kind", "Workload", "Repository", "Environment", "Ref", "Phase", "State", "Age"}, columns); diff != "" {
		bad("CRD %s: kubectl get columns (-want +got):\n%s", crd.Name, diff)
	}
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		return errors.Join(append(errs, fmt.Errorf("CRD %s: no schema", crd.Name))...)
	}
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	prop := func(path ...string) apiextensionsv1.JSONSchemaProps {
		p := spec
		for _, name := range path {
			p = p.Properties[name]
		}
		return p
	}
	for _, r := range []struct {
		path     []string
		required []string
	}{
		{nil, []string{"repository", "sourceRef"}},
		{[]string{"sourceRef"}, []string{"apiVersion", "kind", "name"}},
		{[]string{"repository"}, []string{"name"}},
	} {
		if got := prop(r.path...).Required; !slices.Equal(got, r.required) {
			bad("CRD %s: spec.%s requires %v, want %v", crd.Name, strings.Join(r.path, "."), got, r.required)
		}
	}
	maxLen := func(p apiextensionsv1.JSONSchemaProps) int64 {
		if p.MaxLength == nil {
			return -1
		}
		return *p.MaxLength
	}
	for _, m := range []struct {
		path []string
		max  int64
	}{
		{[]string{"description"}, 140},
		{[]string{"repository", "environment"}, 255},
	} {
		if got := maxLen(prop(m.path...)); got != m.max {
			bad("CRD %s: spec.%s maxLength %d, want %d", crd.Name, strings.Join(m.path, "."), got, m.max)
		}
	}
	if got := prop("repository", "name").Pattern; got != `^([A-Za-z0-9-]+/)?[A-Za-z0-9._-]+$` {
		bad("CRD %s: spec.repository.name pattern %q", crd.Name, got)
	}
	if u := prop("environmentURL"); u.Format != "uri" || u.Pattern != "^https?://" {
		bad("CRD %s: spec.environmentURL format %q pattern %q, want an http(s) uri", crd.Name, u.Format, u.Pattern)
	}
	rules := prop("extract").XValidations
	if !slices.ContainsFunc(rules, func(r apiextensionsv1.ValidationRule) bool {
		return strings.Contains(r.Rule, "self.containerName") && strings.Contains(r.Rule, "self.jsonPath")
	}) {
		bad("CRD %s: spec.extract has no rule against both containerName and jsonPath (%v)", crd.Name, rules)
	}

	read := []string{"get", "list", "watch"}
	for _, role := range []struct {
		name  string
		rules []rbacv1.PolicyRule
	}{
		{"ClusterRole " + b.clusterRole.Name, b.clusterRole.Rules},
		{"Role " + b.namespacedRole.Name + " (namespaced variant)", b.namespacedRole.Rules},
	} {
		granted := map[string][]string{}
		for _, r := range role.rules {
			if slices.Contains(r.APIGroups, githubGroup) {
				for _, res := range r.Resources {
					granted[res] = append(granted[res], r.Verbs...)
				}
			}
		}
		if got := granted["githubdeployments"]; !slices.Equal(got, read) {
			bad("%s: verbs %v on githubdeployments, want %v (an informer; the spec is the users')", role.name, got, read)
		}
		if got := granted["githubdeployments/status"]; !slices.Contains(got, "update") && !slices.Contains(got, "patch") {
			bad("%s: verbs %v on githubdeployments/status: the tracker cannot write the status", role.name, got)
		}
	}
	for i, r := range b.role.Rules {
		if slices.Contains(r.APIGroups, githubGroup) {
			bad("Role %s rule %d: grants %v on GitHubDeployments in the tracker's namespace only; they live beside workloads", b.role.Name, i, r.Resources)
		}
	}
	return errors.Join(errs...)
}

// checkUserRoles: two ClusterRoles let people use GitHubDeployments through Kubernetes' built-in roles: one to
// read them (and their status), aggregated into view, edit and admin, one to write their spec, into edit and
// admin. Nothing binds them, the tracker's own ClusterRoles are aggregated into none of view, edit and admin
// (every viewer would read pods cluster-wide), and no user writes the status.
func checkUserRoles(b *bundle) error {
	type want struct {
		aggregateTo []string
		rules       []rbacv1.PolicyRule
	}
	wants := map[string]want{
		"deployment-tracker-githubdeployments-view": {[]string{"admin", "edit", "view"}, []rbacv1.PolicyRule{{
			APIGroups: []string{githubGroup}, Resources: []string{"githubdeployments", "githubdeployments/status"}, Verbs: []string{"get", "list", "watch"},
		}}},
		"deployment-tracker-githubdeployments-edit": {[]string{"admin", "edit"}, []rbacv1.PolicyRule{{
			APIGroups: []string{githubGroup}, Resources: []string{"githubdeployments"},
			Verbs: []string{"create", "update", "patch", "delete", "deletecollection"},
		}}},
	}
	aggregateTo := func(r *rbacv1.ClusterRole) []string {
		var to []string
		for k, v := range r.Labels {
			if name, ok := strings.CutPrefix(k, aggregateToUsers); ok && v == "true" {
				to = append(to, name)
			}
		}
		slices.Sort(to)
		return to
	}
	var errs []error
	got := map[string]want{}
	for _, r := range b.userRoles {
		got[r.Name] = want{aggregateTo(r), r.Rules}
		if r.AggregationRule != nil {
			errs = append(errs, fmt.Errorf("ClusterRole %s: aggregates other roles into view, edit or admin", r.Name))
		}
	}
	if diff := cmp.Diff(wants, got, cmp.AllowUnexported(want{})); diff != "" {
		errs = append(errs, fmt.Errorf("ClusterRoles aggregated into view, edit and admin (-want +got):\n%s", diff))
	}
	for _, r := range slices.Concat([]*rbacv1.ClusterRole{b.clusterRole, b.ownersRole}, b.ownerRoles) {
		if to := aggregateTo(r); len(to) > 0 {
			errs = append(errs, fmt.Errorf("ClusterRole %s: the tracker's, but aggregated into %v", r.Name, to))
		}
	}
	refs := []rbacv1.RoleRef{b.clusterRoleBinding.RoleRef, b.ownersBinding.RoleRef, b.roleBinding.RoleRef,
		b.namespacedRoleBinding.RoleRef, b.namespacedOwnersBinding.RoleRef}
	for _, ref := range refs {
		if _, ok := wants[ref.Name]; ok && ref.Kind == "ClusterRole" {
			errs = append(errs, fmt.Errorf("ClusterRole %s is bound: it is for Kubernetes' view, edit and admin only", ref.Name))
		}
	}
	return errors.Join(errs...)
}

// checkGitHubDeploymentPolicy: a CRD's validation rules cannot read an object's namespace, so a
// ValidatingAdmissionPolicy refuses a GitHubDeployment whose sourceRef names another namespace: on create and
// update of the spec (not of the status the tracker writes), failing closed, bound to deny everywhere.
func checkGitHubDeploymentPolicy(b *bundle) error {
	var errs []error
	p, pb := b.policy, b.policyBinding
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: failurePolicy %v, want Fail", p.Name, p.Spec.FailurePolicy))
	}
	if p.Spec.ParamKind != nil {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: paramKind %v; the rule needs no parameters", p.Name, p.Spec.ParamKind))
	}
	wantRules := []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{githubGroup}, APIVersions: []string{"*"}, Resources: []string{b.crds["GitHubDeployment"].Spec.Names.Plural},
			Scope: ptr.To(admissionregistrationv1.AllScopes),
		},
	}}}
	if p.Spec.MatchConstraints == nil {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: no matchConstraints", p.Name))
	} else if diff := cmp.Diff(wantRules, p.Spec.MatchConstraints.ResourceRules); diff != "" {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: resourceRules (-want +got):\n%s", p.Name, diff))
	}
	if len(p.Spec.Validations) != 1 {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: %d validations, want 1", p.Name, len(p.Spec.Validations)))
	}
	for _, v := range p.Spec.Validations {
		for _, term := range []string{"object.spec.sourceRef.namespace", "request.namespace"} {
			if !strings.Contains(v.Expression, term) {
				errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicy %s: expression %q does not compare %s", p.Name, v.Expression, term))
			}
		}
	}
	if pb.Spec.PolicyName != p.Name {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicyBinding %s: binds %q, want %s", pb.Name, pb.Spec.PolicyName, p.Name))
	}
	if !slices.Equal(pb.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicyBinding %s: validationActions %v, want [Deny]", pb.Name, pb.Spec.ValidationActions))
	}
	if pb.Spec.ParamRef != nil || pb.Spec.MatchResources != nil {
		errs = append(errs, fmt.Errorf("ValidatingAdmissionPolicyBinding %s: narrowed by paramRef or matchResources; it applies everywhere", pb.Name))
	}
	return errors.Join(errs...)
}

func checkBindings(b *bundle) error {
	sa := b.serviceAccount
	var errs []error
	if got := b.deployment.Spec.Template.Spec.ServiceAccountName; got != sa.Name || b.deployment.Namespace != sa.Namespace {
		errs = append(errs, fmt.Errorf("deployment runs as %s/%s, ServiceAccount is %s/%s", b.deployment.Namespace, got, sa.Namespace, sa.Name))
	}
	wantSubjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}
	for _, bd := range []struct {
		name     string
		subjects []rbacv1.Subject
		got      rbacv1.RoleRef
		want     rbacv1.RoleRef
		sameNS   bool
	}{
		{"ClusterRoleBinding " + b.clusterRoleBinding.Name, b.clusterRoleBinding.Subjects, b.clusterRoleBinding.RoleRef,
			rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.clusterRole.Name}, true},
		{"RoleBinding " + b.roleBinding.Name, b.roleBinding.Subjects, b.roleBinding.RoleRef,
			rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: b.role.Name}, b.roleBinding.Namespace == b.role.Namespace},
		{"namespaced RoleBinding " + b.namespacedRoleBinding.Name, b.namespacedRoleBinding.Subjects, b.namespacedRoleBinding.RoleRef,
			rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: b.namespacedRole.Name},
			b.namespacedRoleBinding.Namespace == b.namespacedRole.Namespace},
		{"ClusterRoleBinding " + b.ownersBinding.Name, b.ownersBinding.Subjects, b.ownersBinding.RoleRef,
			rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.ownersRole.Name}, true},
		{"namespaced RoleBinding " + b.namespacedOwnersBinding.Name, b.namespacedOwnersBinding.Subjects, b.namespacedOwnersBinding.RoleRef,
			rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.ownersRole.Name},
			b.namespacedOwnersBinding.Namespace == b.namespacedRole.Namespace},
	} {
		if diff := cmp.Diff(wantSubjects, bd.subjects); diff != "" {
			errs = append(errs, fmt.Errorf("%s subjects (-want +got):\n%s", bd.name, diff))
		}
		if bd.got != bd.want || !bd.sameNS {
			errs = append(errs, fmt.Errorf("%s: roleRef %+v, want %+v in the same namespace", bd.name, bd.got, bd.want))
		}
	}
	return errors.Join(errs...)
}

func checkSelectors(b *bundle) error {
	podLabels := labels.Set(b.deployment.Spec.Template.Labels)
	var errs []error
	matches := func(what string, ls *metav1.LabelSelector) {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		case sel.Empty() || !sel.Matches(podLabels):
			errs = append(errs, fmt.Errorf("%s %v does not select the pod labels %v", what, sel, podLabels))
		}
	}
	matches("deployment selector", b.deployment.Spec.Selector)
	matches("service selector", &metav1.LabelSelector{MatchLabels: b.service.Spec.Selector})
	matches("PodDisruptionBudget selector", b.pdb.Spec.Selector)
	tsc := b.deployment.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 {
		return errors.Join(append(errs, fmt.Errorf("want one topologySpreadConstraint, got %d", len(tsc)))...)
	}
	matches("topologySpreadConstraint labelSelector", tsc[0].LabelSelector)
	if tsc[0].TopologyKey != corev1.LabelHostname || tsc[0].WhenUnsatisfiable != corev1.ScheduleAnyway || tsc[0].MaxSkew != 1 {
		errs = append(errs, fmt.Errorf("topologySpreadConstraint: want maxSkew 1 over %s, ScheduleAnyway", corev1.LabelHostname))
	}
	if b.pdb.Namespace != b.deployment.Namespace || b.service.Namespace != b.deployment.Namespace {
		errs = append(errs, errors.New("Service, PodDisruptionBudget and Deployment must share a namespace"))
	}
	return errors.Join(errs...)
}

func checkConfiguration(b *bundle) error {
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == b.config.Name && e.Prefix == ""
	}) {
		errs = append(errs, fmt.Errorf("container: no envFrom of ConfigMap %s", b.config.Name))
	}
	var keys []string
	for k := range b.config.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"BASE_URL", "CLUSTER", "DN_TEMPLATE", "LOGICAL_ENVIRONMENT", "ORG", "PHYSICAL_ENVIRONMENT"}, keys); diff != "" {
		errs = append(errs, fmt.Errorf("ConfigMap %s keys (-want +got):\n%s", b.config.Name, diff))
	}
	if got := b.config.Data["BASE_URL"]; got != "https://api.github.com" {
		errs = append(errs, fmt.Errorf("BASE_URL %q", got))
	}
	if got := b.config.Data["DN_TEMPLATE"]; got != "{{namespace}}/{{deploymentName}}/{{containerName}}" {
		errs = append(errs, fmt.Errorf("DN_TEMPLATE %q", got))
	}
	idx := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAMESPACE" })
	if idx < 0 || c.Env[idx].ValueFrom == nil || c.Env[idx].ValueFrom.FieldRef == nil || c.Env[idx].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		errs = append(errs, errors.New("POD_NAMESPACE must come from metadata.namespace (the leader-election Lease's namespace)"))
	}
	return errors.Join(errs...)
}

func checkCredentials(b *bundle) error {
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			errs = append(errs, fmt.Errorf("envFrom Secret %s: would put the credential files' contents into the environment", e.SecretRef.Name))
		}
	}
	for _, name := range []string{"API_TOKEN_FILE", "GH_APP_ID", "GH_INSTALL_ID", "GH_APP_PRIV_KEY"} {
		idx := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if idx < 0 || c.Env[idx].ValueFrom == nil || c.Env[idx].ValueFrom.SecretKeyRef == nil {
			errs = append(errs, fmt.Errorf("env %s: want it from Secret %s", name, githubSecret))
			continue
		}
		ref := c.Env[idx].ValueFrom.SecretKeyRef
		if ref.Name != githubSecret || ref.Key != name || ref.Optional == nil || !*ref.Optional {
			errs = append(errs, fmt.Errorf("env %s: want optional key %s of Secret %s, got %+v", name, name, githubSecret, ref))
		}
	}
	for _, e := range c.Env {
		if e.Name == "API_TOKEN" {
			errs = append(errs, errors.New("env API_TOKEN: the token belongs in a mounted file (API_TOKEN_FILE)"))
		}
	}
	vi := slices.IndexFunc(b.deployment.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == githubSecret
	})
	if vi < 0 {
		return errors.Join(append(errs, fmt.Errorf("no volume of Secret %s", githubSecret))...)
	}
	vol := b.deployment.Spec.Template.Spec.Volumes[vi]
	if vol.Secret.Optional == nil || !*vol.Secret.Optional {
		errs = append(errs, fmt.Errorf("volume %s: must be optional, so that a missing Secret is a clear error of the tracker, not ContainerCreating", vol.Name))
	}
	if len(vol.Secret.Items) > 0 {
		errs = append(errs, fmt.Errorf("volume %s: no items: the token and App variants have different keys", vol.Name))
	}
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol.Name })
	if mi < 0 || c.VolumeMounts[mi].MountPath != credentialsDir || !c.VolumeMounts[mi].ReadOnly {
		errs = append(errs, fmt.Errorf("volume %s: want it mounted read-only at %s", vol.Name, credentialsDir))
	}
	return errors.Join(errs...)
}

func checkDeploymentShape(b *bundle) error {
	d := b.deployment
	spec := d.Spec.Template.Spec
	c, err := b.tracker()
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		bad("replicas %v, want 2", d.Spec.Replicas)
	}
	if c.Image != "ghcr.io/deployment-tracker/deployment-tracker:v0.1.0" {
		bad("image %s", c.Image)
	}
	if len(c.Command) > 0 {
		bad("command %v: the image's entrypoint is the binary", c.Command)
	}
	if !slices.Contains(c.Args, "-leader-elect=true") {
		bad("args %v: two replicas need -leader-elect=true", c.Args)
	}
	wantPorts := map[string]int32{"webhook": 9443, "metrics": 9090, "health": 8081}
	if len(c.Ports) != len(wantPorts) {
		bad("container ports %v, want %v", c.Ports, wantPorts)
	}
	for _, p := range c.Ports {
		if wantPorts[p.Name] != p.ContainerPort {
			bad("container port %s/%d, want %v", p.Name, p.ContainerPort, wantPorts)
		}
	}
	res := c.Resources
	for _, q := range []struct {
		what string
		got  resource.Quantity
		ok   bool
		want string
	}{
		{"requests.cpu", res.Requests[corev1.ResourceCPU], res.Requests != nil, "50m"},
		{"requests.memory", res.Requests[corev1.ResourceMemory], res.Requests != nil, "128Mi"},
		{"limits.memory", res.Limits[corev1.ResourceMemory], res.Limits != nil, "512Mi"},
	} {
		if !q.ok || q.got.Cmp(resource.MustParse(q.want)) != 0 {
			bad("resources.%s %s, want %s", q.what, q.got.String(), q.want)
		}
	}
	if _, ok := res.Limits[corev1.ResourceCPU]; ok {
		bad("resources.limits.cpu: no CPU limit (throttling would delay admission answers)")
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds != 30 {
		bad("terminationGracePeriodSeconds %v, want 30", spec.TerminationGracePeriodSeconds)
	}
	if spec.PriorityClassName != "" {
		bad("priorityClassName %q: left to the operator", spec.PriorityClassName)
	}
	if ma := b.pdb.Spec.MinAvailable; ma == nil || ma.Type != intstr.Int || ma.IntVal != 1 || b.pdb.Spec.MaxUnavailable != nil {
		bad("PodDisruptionBudget: want minAvailable 1 (and no maxUnavailable)")
	}
	return errors.Join(errs...)
}

// TestChecksCatchBrokenManifests breaks the install in one place at a time and expects the named check to
// fail, so that none of the checks above passes vacuously.
func TestChecksCatchBrokenManifests(t *testing.T) {
	ptr := func(s string) *string { return &s }
	const netpol = "network policy admits the webhook from anywhere, metrics from labelled namespaces"
	mutations := []struct {
		check  string
		name   string
		mutate func(b *bundle)
	}{
		{"apply order", "webhook before deployment", func(b *bundle) {
			b.order = append([]string{"Namespace", "ValidatingWebhookConfiguration"}, b.order[1:]...)
		}},
		{"one namespace", "service elsewhere", func(b *bundle) { b.service.Namespace = "default" }},
		{"serving certificate covers the service", "renamed service", func(b *bundle) { b.service.Name = "tracker-webhook" }},
		{"serving certificate secret is the cert dir", "other secret", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Volumes[0].Secret.SecretName = "webhook-tls"
		}},
		{"serving certificate secret is the cert dir", "wrong mount path", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].VolumeMounts[0].MountPath = "/certs"
		}},
		{"serving certificate secret is the cert dir", "inject-ca-from names another certificate", func(b *bundle) {
			b.webhook.Annotations["cert-manager.io/inject-ca-from"] = "deployment-tracker/deployment-tracker-root-ca"
		}},
		{"webhook calls the service", "wrong path", func(b *bundle) { b.webhook.Webhooks[0].ClientConfig.Service.Path = ptr("/validate") }},
		{"webhook calls the service", "wrong port", func(b *bundle) {
			p := int32(8443)
			b.webhook.Webhooks[0].ClientConfig.Service.Port = &p
		}},
		{"inject-ca-from names the mounted certificate", "the CA certificate", func(b *bundle) {
			b.webhook.Annotations["cert-manager.io/inject-ca-from"] = "deployment-tracker/deployment-tracker-root-ca"
		}},
		{"inject-ca-from names the mounted certificate", "another namespace", func(b *bundle) {
			b.webhook.Annotations["cert-manager.io/inject-ca-from"] = "default/deployment-tracker-serving-cert"
		}},
		{"inject-ca-from names the mounted certificate", "certificate renamed", func(b *bundle) {
			b.certificates["deployment-tracker-serving-cert"].Name = "serving"
		}},
		{"webhook calls the service", "service in another namespace", func(b *bundle) {
			b.webhook.Webhooks[0].ClientConfig.Service.Namespace = "default"
		}},
		{"service targets the webhook container port", "numeric target", func(b *bundle) {
			b.service.Spec.Ports[0].TargetPort = intstr.FromInt32(9443)
		}},
		{"service targets the webhook container port", "unknown port name", func(b *bundle) {
			b.service.Spec.Ports[0].TargetPort = intstr.FromString("https")
		}},
		{"probes use container ports", "readiness on an unknown port", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("healthz")
		}},
		{"probes use container ports", "liveness on the readiness path", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/readyz"
		}},
		{"webhook observes and fails open", "failurePolicy Fail", func(b *bundle) {
			f := admissionregistrationv1.Fail
			b.webhook.Webhooks[0].FailurePolicy = &f
		}},
		{"webhook observes and fails open", "sideEffects Some", func(b *bundle) {
			s := admissionregistrationv1.SideEffectClassSome
			b.webhook.Webhooks[0].SideEffects = &s
		}},
		{"webhook observes and fails open", "timeout 10s", func(b *bundle) {
			ten := int32(10)
			b.webhook.Webhooks[0].TimeoutSeconds = &ten
		}},
		{"webhook observes and fails open", "UPDATE too", func(b *bundle) {
			b.webhook.Webhooks[0].Rules[0].Operations = append(b.webhook.Webhooks[0].Rules[0].Operations, admissionregistrationv1.Update)
		}},
		{"webhook skips its own namespace and kube-system", "kube-system reviewed", func(b *bundle) {
			b.webhook.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values = []string{"deployment-tracker"}
		}},
		{"webhook skips its own namespace and kube-system", "no selector", func(b *bundle) { b.webhook.Webhooks[0].NamespaceSelector = nil }},
		{netpol, "webhook only from the tracker's namespace", func(b *bundle) {
			b.networkPolicy.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
		}},
		{netpol, "metrics from anywhere", func(b *bundle) { b.networkPolicy.Spec.Ingress[1].From = nil }},
		{netpol, "health port admitted", func(b *bundle) {
			r := &b.networkPolicy.Spec.Ingress[0]
			r.Ports = append(r.Ports, networkingv1.NetworkPolicyPort{Port: &intstr.IntOrString{Type: intstr.String, StrVal: "health"}})
		}},
		{netpol, "every port", func(b *bundle) { b.networkPolicy.Spec.Ingress[1].Ports = nil }},
		{netpol, "webhook port moved", func(b *bundle) {
			b.networkPolicy.Spec.Ingress[0].Ports[0].Port = &intstr.IntOrString{Type: intstr.Int, IntVal: 8443}
		}},
		{netpol, "egress too", func(b *bundle) {
			b.networkPolicy.Spec.PolicyTypes = append(b.networkPolicy.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}},
		{netpol, "selects other pods", func(b *bundle) {
			b.networkPolicy.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		}},
		{"pod security is hardened", "root filesystem writable", func(b *bundle) {
			f := false
			b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}},
		{"pod security is hardened", "NET_ADMIN added", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}},
		{"pod security is hardened", "runs as root", func(b *bundle) {
			zero := int64(0)
			b.deployment.Spec.Template.Spec.SecurityContext.RunAsUser = &zero
		}},
		{"pod security is hardened", "no seccomp", func(b *bundle) { b.deployment.Spec.Template.Spec.SecurityContext.SeccompProfile = nil }},
		{"pod security is hardened", "privilege escalation", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}},
		{"RBAC grants no secrets and no wildcards", "secrets", func(b *bundle) {
			b.clusterRole.Rules[0].Resources = append(b.clusterRole.Rules[0].Resources, "secrets")
		}},
		{"RBAC grants no secrets and no wildcards", "wildcard verb", func(b *bundle) { b.role.Rules[0].Verbs = []string{"*"} }},
		{"RBAC rules are the documented ones", "extra verb", func(b *bundle) {
			b.clusterRole.Rules[0].Verbs = append(b.clusterRole.Rules[0].Verbs, "update")
		}},
		{"RBAC rules are the documented ones", "namespaced variant drifts", func(b *bundle) { b.namespacedRole.Rules = b.namespacedRole.Rules[:2] }},
		{"RBAC rules are the documented ones", "no controllerrevisions", func(b *bundle) {
			b.clusterRole.Rules[1].Resources = b.clusterRole.Rules[1].Resources[:4]
		}},
		{"RBAC rules are the documented ones", "Argo role grants more", func(b *bundle) {
			b.ownerRoles[0].Rules[0].Resources = append(b.ownerRoles[0].Rules[0].Resources, "analysisruns")
		}},
		{"RBAC grants no secrets and no wildcards", "owner role lists", func(b *bundle) {
			b.ownerRoles[0].Rules[0].Verbs = append(b.ownerRoles[0].Rules[0].Verbs, "list")
		}},
		{"RBAC grants no secrets and no wildcards", "deletecollection of DeploymentRecords", func(b *bundle) {
			b.role.Rules[1].Verbs = append(b.role.Rules[1].Verbs, "deletecollection")
		}},
		{"RBAC grants no secrets and no wildcards", "delete of the Lease (only the ledger's kinds)", func(b *bundle) {
			b.role.Rules[0].Verbs = append(b.role.Rules[0].Verbs, "delete")
		}},
		{"RBAC grants no secrets and no wildcards", "delete of pods", func(b *bundle) {
			b.clusterRole.Rules[0].Verbs = append(b.clusterRole.Rules[0].Verbs, "delete")
		}},
		{"owners' ClusterRole aggregates the shipped owner roles", "rules of its own", func(b *bundle) {
			b.ownersRole.Rules = []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"rollouts"}, Verbs: []string{"get"}}}
		}},
		{"owners' ClusterRole aggregates the shipped owner roles", "another selector", func(b *bundle) {
			b.ownersRole.AggregationRule.ClusterRoleSelectors[0].MatchLabels = map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}
		}},
		{"owners' ClusterRole aggregates the shipped owner roles", "Argo role unlabelled", func(b *bundle) {
			delete(b.ownerRoles[0].Labels, aggregateToOwners)
		}},
		{"owners' ClusterRole aggregates the shipped owner roles", "tracker role labelled", func(b *bundle) {
			b.clusterRole.Labels[aggregateToOwners] = "true"
		}},
		{"the ledger stays in the tracker's namespace", "cluster-scoped RolloutRecords", func(b *bundle) {
			b.crds["RolloutRecord"].Spec.Scope = apiextensionsv1.ClusterScoped
		}},
		{"the ledger stays in the tracker's namespace", "no status subresource", func(b *bundle) {
			b.crds["RolloutRecord"].Spec.Versions[0].Subresources = nil
		}},
		{"the ledger stays in the tracker's namespace", "rolloutrecords not granted", func(b *bundle) {
			b.role.Rules = b.role.Rules[:3]
		}},
		{"the ledger stays in the tracker's namespace", "granted cluster-wide", func(b *bundle) {
			b.clusterRole.Rules = append(b.clusterRole.Rules, rbacv1.PolicyRule{APIGroups: []string{ledgerGroup}, Resources: []string{"rolloutrecords"}, Verbs: []string{"get"}})
		}},
		{"the ledger stays in the tracker's namespace", "granted in the watched namespace", func(b *bundle) {
			b.namespacedRole.Rules = append(b.namespacedRole.Rules, rbacv1.PolicyRule{APIGroups: []string{ledgerGroup}, Resources: []string{"rolloutrecords"}, Verbs: []string{"get"}})
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "cluster-scoped", func(b *bundle) {
			b.crds["GitHubDeployment"].Spec.Scope = apiextensionsv1.ClusterScoped
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "no status subresource", func(b *bundle) {
			b.crds["GitHubDeployment"].Spec.Versions[0].Subresources = nil
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "description longer than GitHub's", func(b *bundle) {
			long := int64(1024)
			spec := b.crds["GitHubDeployment"].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			d := spec.Properties["description"]
			d.MaxLength = &long
			spec.Properties["description"] = d
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "tracker updates the spec", func(b *bundle) {
			for i, r := range b.clusterRole.Rules {
				if slices.Equal(r.Resources, []string{"githubdeployments"}) {
					b.clusterRole.Rules[i].Verbs = append(slices.Clone(r.Verbs), "update")
				}
			}
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "not watched in the watched namespace", func(b *bundle) {
			b.namespacedRole.Rules = slices.DeleteFunc(b.namespacedRole.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, githubGroup)
			})
		}},
		{"GitHubDeployments: users write the spec, the tracker the status", "granted in the tracker's namespace", func(b *bundle) {
			b.role.Rules = append(b.role.Rules, rbacv1.PolicyRule{APIGroups: []string{githubGroup}, Resources: []string{"githubdeployments"}, Verbs: []string{"get"}})
		}},
		{"users' ClusterRoles extend view, edit and admin with GitHubDeployments", "editors write the status", func(b *bundle) {
			for _, r := range b.userRoles {
				if strings.HasSuffix(r.Name, "-edit") {
					r.Rules[0].Resources = append(r.Rules[0].Resources, "githubdeployments/status")
				}
			}
		}},
		{"users' ClusterRoles extend view, edit and admin with GitHubDeployments", "editors cannot create", func(b *bundle) {
			for _, r := range b.userRoles {
				if strings.HasSuffix(r.Name, "-edit") {
					delete(r.Labels, aggregateToUsers+"edit")
				}
			}
		}},
		{"users' ClusterRoles extend view, edit and admin with GitHubDeployments", "viewers read pods", func(b *bundle) {
			b.clusterRole.Labels[aggregateToUsers+"view"] = "true"
		}},
		{"users' ClusterRoles extend view, edit and admin with GitHubDeployments", "bound to the tracker", func(b *bundle) {
			b.clusterRoleBinding.RoleRef.Name = "deployment-tracker-githubdeployments-edit"
		}},
		{"a GitHubDeployment reports only its own namespace", "fails open", func(b *bundle) {
			ignore := admissionregistrationv1.Ignore
			b.policy.Spec.FailurePolicy = &ignore
		}},
		{"a GitHubDeployment reports only its own namespace", "updates not checked", func(b *bundle) {
			b.policy.Spec.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
		}},
		{"a GitHubDeployment reports only its own namespace", "the tracker's status writes checked", func(b *bundle) {
			rule := &b.policy.Spec.MatchConstraints.ResourceRules[0]
			rule.Resources = append(rule.Resources, "githubdeployments/status")
		}},
		{"a GitHubDeployment reports only its own namespace", "compares nothing", func(b *bundle) {
			b.policy.Spec.Validations[0].Expression = "true"
		}},
		{"a GitHubDeployment reports only its own namespace", "binding warns only", func(b *bundle) {
			b.policyBinding.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}
		}},
		{"a GitHubDeployment reports only its own namespace", "binding names another policy", func(b *bundle) {
			b.policyBinding.Spec.PolicyName = "deployment-tracker"
		}},
		{"bindings bind the deployment's service account", "other service account", func(b *bundle) {
			b.deployment.Spec.Template.Spec.ServiceAccountName = "default"
		}},
		{"bindings bind the deployment's service account", "subject in another namespace", func(b *bundle) {
			b.roleBinding.Subjects[0].Namespace = "default"
		}},
		{"bindings bind the deployment's service account", "binding to another role", func(b *bundle) {
			b.clusterRoleBinding.RoleRef.Name = "view"
		}},
		{"bindings bind the deployment's service account", "owners bound to another account", func(b *bundle) {
			b.ownersBinding.Subjects[0].Name = "default"
		}},
		{"bindings bind the deployment's service account", "namespaced owners binding to the tracker's role", func(b *bundle) {
			b.namespacedOwnersBinding.RoleRef.Name = "deployment-tracker"
		}},
		{"labels and selectors match", "service selects other pods", func(b *bundle) {
			b.service.Spec.Selector = map[string]string{"app": "tracker"}
		}},
		{"labels and selectors match", "pdb selects other pods", func(b *bundle) {
			b.pdb.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "tracker"}}
		}},
		{"labels and selectors match", "pod labels changed", func(b *bundle) {
			b.deployment.Spec.Template.Labels = map[string]string{"app": "tracker"}
		}},
		{"configuration reaches the container", "no envFrom", func(b *bundle) { b.deployment.Spec.Template.Spec.Containers[0].EnvFrom = nil }},
		{"configuration reaches the container", "missing key", func(b *bundle) { delete(b.config.Data, "CLUSTER") }},
		{"GitHub credentials are optional files", "secret volume required", func(b *bundle) {
			for _, v := range b.deployment.Spec.Template.Spec.Volumes {
				if v.Secret != nil && v.Secret.SecretName == githubSecret {
					v.Secret.Optional = nil
				}
			}
		}},
		{"GitHub credentials are optional files", "envFrom the secret", func(b *bundle) {
			c := &b.deployment.Spec.Template.Spec.Containers[0]
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: githubSecret}}})
		}},
		{"deployment shape", "one replica", func(b *bundle) {
			one := int32(1)
			b.deployment.Spec.Replicas = &one
		}},
		{"deployment shape", "cpu limit", func(b *bundle) {
			b.deployment.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("100m")
		}},
		{"deployment shape", "pdb maxUnavailable", func(b *bundle) {
			b.pdb.Spec.MaxUnavailable = &intstr.IntOrString{Type: intstr.Int, IntVal: 1}
		}},
	}
	byName := map[string]check{}
	covered := map[string]bool{}
	for _, c := range checks {
		byName[c.name] = c
	}
	for _, m := range mutations {
		c, ok := byName[m.check]
		if !ok {
			t.Fatalf("mutation %q names no check %q", m.name, m.check)
		}
		covered[m.check] = true
		t.Run(m.check+"/"+m.name, func(t *testing.T) {
			b := loadBundle(t)
			m.mutate(b)
			if err := c.fn(b); err == nil {
				t.Errorf("check %q passed on a broken install (%s)", m.check, m.name)
			}
		})
	}
	for _, c := range checks {
		if !covered[c.name] {
			t.Errorf("check %q: no mutation shows that it can fail", c.name)
		}
	}
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		u = u.DeepCopy()
		if err := unstructured.SetNestedField(u.Object, "Always", "spec", "template", "spec", "imagePullPolicy"); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeStrict(u); err == nil || !strings.Contains(err.Error(), `unknown field "spec.template.spec.imagePullPolicy"`) {
			t.Errorf("decodeStrict() error = %v, want an unknown field error", err)
		}
		return
	}
	t.Fatal("no Deployment")
}

func TestWebhookConfiguration(t *testing.T) {
	wc, err := deploy.WebhookConfiguration()
	if err != nil {
		t.Fatalf("WebhookConfiguration() error = %v", err)
	}
	b := loadBundle(t)
	if diff := cmp.Diff(b.webhook, wc); diff != "" {
		t.Errorf("WebhookConfiguration() differs from the manifest (-manifest +got):\n%s", diff)
	}
	if wc.Name != deploy.WebhookConfigurationName {
		t.Errorf("name %q, want %q", wc.Name, deploy.WebhookConfigurationName)
	}
}

// TestObjectsAreFresh makes sure that callers (the end-to-end test patches objects before applying them) cannot
// change what the next caller gets.
func TestObjectsAreFresh(t *testing.T) {
	first, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	first[0].SetName("changed")
	second, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if second[0].GetName() == "changed" {
		t.Error("Objects() returned shared objects")
	}
}

// TestKustomizationsMatchApplyF keeps the two install commands equivalent: each Kustomization lists exactly
// the *.yaml files of its directory (what kubectl apply -f DIR applies, and what Objects embeds), and no other
// file there has an extension that kubectl apply -f would read.
func TestKustomizationsMatchApplyF(t *testing.T) {
	tests := []struct {
		dir   string
		extra []string // resources outside the directory
	}{
		{dir: ".", extra: []string{"../certs"}},
		{dir: "../certs"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tt.dir, "Kustomization"))
			if err != nil {
				t.Fatal(err)
			}
			var k struct {
				APIVersion string   `json:"apiVersion"`
				Kind       string   `json:"kind"`
				Resources  []string `json:"resources"`
			}
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				t.Fatalf("Kustomization: %v", err)
			}
			if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				t.Errorf("Kustomization: apiVersion %q kind %q", k.APIVersion, k.Kind)
			}
			entries, err := os.ReadDir(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range entries {
				switch ext := filepath.Ext(e.Name()); {
				case e.IsDir():
				case ext == ".yaml":
					want = append(want, e.Name())
				case ext == ".yml" || ext == ".json":
					t.Errorf("%s: kubectl apply -f would apply it, but it is not embedded; name it *.yaml", e.Name())
				case strings.EqualFold(e.Name(), "kustomization.yaml"), strings.EqualFold(e.Name(), "kustomization.yml"):
					t.Errorf("%s: kubectl apply -f would try to apply it", e.Name())
				}
			}
			want = append(want, tt.extra...)
			if diff := cmp.Diff(want, k.Resources); diff != "" {
				t.Errorf("Kustomization resources (-files +listed):\n%s", diff)
			}
		})
	}
}

// TestExampleSecrets checks the credential examples against the Deployment: the Secret's name, and that every
// path variable points at a key of the same Secret, as mounted.
func TestExampleSecrets(t *testing.T) {
	b := loadBundle(t)
	paths, err := filepath.Glob(filepath.Join("examples", "secret-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("examples: want a token and an App Secret, got %v", paths)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := manifest.Parse(data)
			if err != nil || len(objs) != 1 {
				t.Fatalf("want one object, got %d (%v)", len(objs), err)
			}
			obj, err := decodeStrict(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			s, ok := obj.(*corev1.Secret)
			if !ok {
				t.Fatalf("%T, want a Secret", obj)
			}
			if s.Name != githubSecret || s.Namespace != b.deployment.Namespace {
				t.Errorf("Secret %s/%s, the Deployment reads %s/%s", s.Namespace, s.Name, b.deployment.Namespace, githubSecret)
			}
			_, token := s.StringData["API_TOKEN_FILE"]
			_, app := s.StringData["GH_APP_ID"]
			if token == app {
				t.Errorf("keys %v: want either API_TOKEN_FILE or the GitHub App variables", s.StringData)
			}
			for _, v := range []string{"API_TOKEN_FILE", "GH_APP_PRIV_KEY"} {
				path, ok := s.StringData[v]
				if !ok {
					continue
				}
				dir, key := filepath.Split(path)
				if filepath.Clean(dir) != credentialsDir {
					t.Errorf("%s=%s: not under the mount %s", v, path, credentialsDir)
				}
				if _, ok := s.StringData[key]; !ok {
					t.Errorf("%s=%s: the Secret has no key %q", v, path, key)
				}
			}
			if app {
				for _, v := range []string{"GH_INSTALL_ID", "GH_APP_PRIV_KEY"} {
					if _, ok := s.StringData[v]; !ok {
						t.Errorf("GitHub App Secret without %s", v)
					}
				}
			}
		})
	}
}

// TestNamespacedComponentGrantsNothingClusterWide: the single-namespace Component (namespaced/Kustomization)
// deletes every ClusterRoleBinding of deploy/ and the tracker's ClusterRole; the ClusterRoles it keeps are the
// ones namespaced/rbac.yaml binds in the watched namespace.
func TestNamespacedComponentGrantsNothingClusterWide(t *testing.T) {
	b := loadBundle(t)
	data, err := os.ReadFile(filepath.Join("namespaced", "Kustomization"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Patches    []struct {
			Patch  string          `json:"patch"`
			Target json.RawMessage `json:"target,omitempty"`
		} `json:"patches"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("namespaced/Kustomization: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1alpha1" || k.Kind != "Component" {
		t.Errorf("namespaced/Kustomization: apiVersion %q kind %q, want a Component", k.APIVersion, k.Kind)
	}
	var deleted []string
	for _, p := range k.Patches {
		var sm struct {
			Patch    string `json:"$patch"`
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if len(p.Target) > 0 || yaml.Unmarshal([]byte(p.Patch), &sm) != nil || sm.Patch != "delete" {
			continue // a JSON patch of the Deployment, the webhook or the Role
		}
		deleted = append(deleted, sm.Kind+" "+sm.Metadata.Name)
	}
	want := []string{"ClusterRole " + b.clusterRole.Name}
	for _, crb := range []*rbacv1.ClusterRoleBinding{b.clusterRoleBinding, b.ownersBinding} {
		want = append(want, "ClusterRoleBinding "+crb.Name)
	}
	slices.Sort(want)
	slices.Sort(deleted)
	if diff := cmp.Diff(want, deleted); diff != "" {
		t.Errorf("objects the Component deletes (-want +got):\n%s", diff)
	}
	if ref := b.namespacedOwnersBinding.RoleRef; ref.Kind != "ClusterRole" || ref.Name != b.ownersRole.Name ||
		slices.Contains(deleted, "ClusterRole "+ref.Name) {
		t.Errorf("namespaced RoleBinding %s: roleRef %+v, want the kept ClusterRole %s", b.namespacedOwnersBinding.Name, ref, b.ownersRole.Name)
	}
}
