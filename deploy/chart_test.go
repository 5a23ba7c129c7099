package deploy_test

// Tests of the Helm chart charts/deployment-tracker against the kustomize install. They run the helm binary
// that hack/helm.sh builds (make helm), named by the environment variable HELM, which the Makefile sets; without
// it they skip, except in CI (CI=true), where a missing helm fails them, as a missing control plane fails the
// end-to-end suite.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
)

const (
	chartDir = "charts/deployment-tracker"
	// The release whose objects are those of the kustomize install: its name is the chart's, so <fullname>
	// is deployment-tracker, and it is installed in the kustomize install's namespace.
	releaseName      = "deployment-tracker"
	releaseNamespace = "deployment-tracker"
	// componentNamespace is the watched namespace of the single-namespace Component (namespaced/).
	componentNamespace = "my-app"
)

// requiredValues are the values the chart requires, and requiredConfig the keys of deploy/20-config.yaml an
// installer fills in with the same values.
var (
	requiredValues = []string{"--set", "org=octo-org", "--set", "logicalEnvironment=production", "--set", "cluster=prod-eu-1"}
	requiredConfig = map[string]string{"ORG": "octo-org", "LOGICAL_ENVIRONMENT": "production", "CLUSTER": "prod-eu-1"}
)

// helmBinary returns the helm built by hack/helm.sh.
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	reason := "HELM is not set"
	if path != "" {
		if _, err := exec.LookPath(path); err == nil {
			return path
		}
		reason = fmt.Sprintf("HELM=%s is not an executable", path)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: make test builds helm (make helm) and sets HELM", reason)
	}
	t.Skipf("chart tests skipped: %s (make test builds helm and sets HELM; or make helm, then HELM=<its path> go test ./deploy/)", reason)
	return ""
}

// helmRun runs helm and returns its standard output; the error carries its standard error.
func helmRun(helm string, args ...string) ([]byte, error) {
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// helmTemplate renders the chart as release name in namespace, with the CRDs, as text.
func helmTemplate(helm, name, namespace string, args ...string) ([]byte, error) {
	return helmRun(helm, append([]string{"template", name, chartDir, "--namespace", namespace, "--include-crds"}, args...)...)
}

// renderChart renders the chart as the kustomize install's release and parses the objects.
func renderChart(t *testing.T, helm string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(helm, releaseName, releaseNamespace, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Parse(out)
	if err != nil {
		t.Fatalf("helm template output: %v", err)
	}
	return objs
}

// kustomizeObjects returns the objects of `kubectl kustomize deploy/`: deploy/Kustomization lists the files
// of deploy/ and ../certs and nothing else (no transformer: TestKustomizationsMatchApplyF decodes it strictly
// into resources only), so they are deploy.Objects and certs.Objects. The ConfigMap gets requiredConfig.
func kustomizeObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	certObjs, err := certs.Objects()
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, certObjs...)
	fillConfig(t, objs)
	return objs
}

func fillConfig(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "ConfigMap" {
			continue
		}
		for k, v := range requiredConfig {
			if err := unstructured.SetNestedField(u.Object, v, "data", k); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	t.Fatal("no ConfigMap in the kustomize install")
}

// withComponent applies the single-namespace Component (namespaced/Kustomization) to objs the way kustomize
// does: its resources are added, its strategic-merge $patch: delete patches remove objects, and its JSON
// patches (add, replace) change their targets. Any other kind of patch fails the test, so that a change of the
// Component cannot be silently ignored here.
func withComponent(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("namespaced", "Kustomization"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
		Patches   []struct {
			Patch  string `json:"patch"`
			Target *struct {
				Group string `json:"group"`
				Kind  string `json:"kind"`
				Name  string `json:"name"`
			} `json:"target"`
		} `json:"patches"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("namespaced/Kustomization: %v", err)
	}
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join("namespaced", r))
		if err != nil {
			t.Fatal(err)
		}
		more, err := manifest.Parse(data)
		if err != nil {
			t.Fatalf("namespaced/%s: %v", r, err)
		}
		objs = append(objs, more...)
	}
	for i, p := range k.Patches {
		if p.Target == nil {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(p.Patch), &u.Object); err != nil || u.Object["$patch"] != "delete" {
				t.Fatalf("namespaced/Kustomization patch %d: only $patch: delete is supported without a target (%v)", i, err)
			}
			n := len(objs)
			objs = slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
				return o.GroupVersionKind().GroupKind() == u.GroupVersionKind().GroupKind() && o.GetName() == u.GetName()
			})
			if len(objs) != n-1 {
				t.Fatalf("namespaced/Kustomization patch %d: deletes %s %s, found %d", i, u.GetKind(), u.GetName(), n-len(objs))
			}
			continue
		}
		var ops []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		}
		if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
			t.Fatalf("namespaced/Kustomization patch %d: %v", i, err)
		}
		idx := slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool {
			gvk := o.GroupVersionKind()
			return gvk.Group == p.Target.Group && gvk.Kind == p.Target.Kind && o.GetName() == p.Target.Name
		})
		if idx < 0 {
			t.Fatalf("namespaced/Kustomization patch %d: no target %+v", i, *p.Target)
		}
		doc := any(objs[idx].DeepCopy().Object)
		for _, op := range ops {
			if doc, err = jsonPatch(doc, op.Op, op.Path, op.Value); err != nil {
				t.Fatalf("namespaced/Kustomization patch %d: %s %s: %v", i, op.Op, op.Path, err)
			}
		}
		objs[idx] = roundTrip(t, doc)
	}
	return objs
}

// jsonPatch applies one RFC 6902 add or replace operation to doc.
func jsonPatch(doc any, op, path string, value any) (any, error) {
	if op != "add" && op != "replace" {
		return nil, fmt.Errorf("operation %q not supported", op)
	}
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("path must start with /")
	}
	var tokens []string
	for _, s := range strings.Split(path[1:], "/") {
		tokens = append(tokens, strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
	}
	var apply func(node any, tokens []string) (any, error)
	apply = func(node any, tokens []string) (any, error) {
		tok, last := tokens[0], len(tokens) == 1
		switch n := node.(type) {
		case map[string]any:
			child, ok := n[tok]
			switch {
			case last && (ok || op == "add"):
				n[tok] = value
				return n, nil
			case !ok:
				return nil, fmt.Errorf("no member %q", tok)
			}
			c, err := apply(child, tokens[1:])
			n[tok] = c
			return n, err
		case []any:
			if last && op == "add" && tok == "-" {
				return append(n, value), nil
			}
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i > len(n) || (i == len(n) && !(last && op == "add")) {
				return nil, fmt.Errorf("index %q out of range", tok)
			}
			switch {
			case last && op == "add":
				return slices.Insert(n, i, value), nil
			case last:
				n[i] = value
				return n, nil
			}
			c, err := apply(n[i], tokens[1:])
			n[i] = c
			return n, err
		default:
			return nil, fmt.Errorf("%q: not an object or array", tok)
		}
	}
	return apply(doc, tokens)
}

// roundTrip makes doc an object as manifest.Parse makes them (integers as int64).
func roundTrip(t *testing.T, doc any) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Parse(j)
	if err != nil || len(objs) != 1 {
		t.Fatalf("patched object: %v", err)
	}
	return objs[0]
}

func without(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	return slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool { return o.GetKind() == kind })
}

func objectKey(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return fmt.Sprintf("%s/%s %s/%s", gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName())
}

// diffObjects compares two sets of objects by group, kind, namespace and name, each object as a whole
// (apiVersion, metadata with labels and annotations, spec, data, rules, webhooks...). Order does not matter,
// nor do comments or YAML formatting.
func diffObjects(want, got []*unstructured.Unstructured) error {
	index := func(objs []*unstructured.Unstructured) (map[string]*unstructured.Unstructured, error) {
		m := map[string]*unstructured.Unstructured{}
		for _, u := range objs {
			if _, dup := m[objectKey(u)]; dup {
				return nil, fmt.Errorf("%s: rendered twice", objectKey(u))
			}
			m[objectKey(u)] = u
		}
		return m, nil
	}
	w, err := index(want)
	if err != nil {
		return err
	}
	g, err := index(got)
	if err != nil {
		return err
	}
	var errs []error
	for k, wu := range w {
		gu, ok := g[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: missing from the chart", k))
			continue
		}
		if diff := cmp.Diff(wu.Object, gu.Object); diff != "" {
			errs = append(errs, fmt.Errorf("%s differs (-kustomize +chart):\n%s", k, diff))
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			errs = append(errs, fmt.Errorf("%s: rendered by the chart only", k))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// TestChartCRDsAreDeployCRDs: Helm installs the CRDs of the chart's crds/ directory, which must be the generated
// deploy/05-crd.yaml (the ledger) and deploy/06-crd-github.yaml (GitHubDeployment), byte for byte (make
// manifests writes both copies).
func TestChartCRDsAreDeployCRDs(t *testing.T) {
	copies := map[string]string{ // chart's crds/ file -> deploy/ file
		"records.deployment-tracker.io.yaml": "05-crd.yaml",
		"github.deployment-tracker.io.yaml":  "06-crd-github.yaml",
	}
	entries, err := os.ReadDir(filepath.Join(chartDir, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(copies)), names); diff != "" {
		t.Errorf("%s/crds (-want +got):\n%s", chartDir, diff)
	}
	for copyName, source := range copies {
		want, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, "crds", copyName))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s/crds/%s differs from %s: run make manifests (it copies the generated CRDs into the chart)", chartDir, copyName, source)
		}
	}
}

// TestChartMatchesKustomize is the parity test: helm template with the default values and the required ones
// renders exactly the objects of kubectl kustomize deploy/ (with the same required values in its ConfigMap),
// labels included, except the Namespace, which the chart renders only with createNamespace (helm install
// stores the release in the namespace before it creates any object). With watchNamespace, it renders the
// install with the single-namespace Component.
func TestChartMatchesKustomize(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct {
		name string
		set  []string
		want func(t *testing.T) []*unstructured.Unstructured
	}{
		{
			name: "default values",
			want: func(t *testing.T) []*unstructured.Unstructured { return without(kustomizeObjects(t), "Namespace") },
		},
		{
			name: "createNamespace",
			set:  []string{"--set", "createNamespace=true"},
			want: kustomizeObjects,
		},
		{
			name: "watchNamespace: the namespaced Component",
			set:  []string{"--set", "watchNamespace=" + componentNamespace},
			want: func(t *testing.T) []*unstructured.Unstructured {
				return without(withComponent(t, kustomizeObjects(t)), "Namespace")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderChart(t, helm, append(slices.Clone(requiredValues), tt.set...)...)
			if err := diffObjects(tt.want(t), got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestKustomizeBuildIsObjects checks the premise of TestChartMatchesKustomize with kustomize itself, where
// kubectl is installed (it is not a dependency of the repository): kubectl kustomize deploy/ builds exactly
// deploy.Objects and certs.Objects, and an overlay with the namespaced Component exactly withComponent of them.
func TestKustomizeBuildIsObjects(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not in PATH: the kustomize build is not cross-checked")
	}
	build := func(t *testing.T, dir string) []*unstructured.Unstructured {
		cmd := exec.Command(kubectl, "kustomize", dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v: %s", dir, err, stderr.String())
		}
		objs, err := manifest.Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		fillConfig(t, objs)
		return objs
	}
	t.Run("deploy", func(t *testing.T) {
		if err := diffObjects(kustomizeObjects(t), build(t, ".")); err != nil {
			t.Error(err)
		}
	})
	t.Run("namespaced Component", func(t *testing.T) {
		overlay := t.TempDir()
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(overlay, wd) // kustomize refuses absolute paths
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("resources: [%s]\ncomponents: [%s]\n", rel, filepath.Join(rel, "namespaced"))
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := diffObjects(withComponent(t, kustomizeObjects(t)), build(t, overlay)); err != nil {
			t.Error(err)
		}
	})
}

// TestChartNamesFollowTheRelease: with another release name and namespace every name and reference follows
// them; renamed back as text, the objects are those of the default release. A name written into a template
// instead of derived from the release would show here.
func TestChartNamesFollowTheRelease(t *testing.T) {
	helm := helmBinary(t)
	const name, namespace = "tracker", "ns-under-test"
	out, err := helmTemplate(helm, name, namespace, append(slices.Clone(requiredValues), "--set", "createNamespace=true")...)
	if err != nil {
		t.Fatal(err)
	}
	// The release name lacks the chart name, so <fullname> is tracker-deployment-tracker.
	out = bytes.ReplaceAll(out, []byte(name+"-deployment-tracker"), []byte("deployment-tracker"))
	out = bytes.ReplaceAll(out, []byte(namespace), []byte(releaseNamespace))
	got, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	want := renderChart(t, helm, append(slices.Clone(requiredValues), "--set", "createNamespace=true")...)
	if err := diffObjects(want, got); err != nil {
		t.Error(err)
	}
}

// valueSet is one file of the chart's ci/ directory (the chart-testing convention), linted and rendered, and
// what its objects must show.
type valueSet struct {
	file  string
	check func(t *testing.T, r *rendered)
}

// rendered is a render of the chart, with its Deployment and the configuration the tracker parses from it.
type rendered struct {
	objs       []*unstructured.Unstructured
	deployment *appsv1.Deployment
	cfg        *config.Config
}

func (r *rendered) kinds(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range r.objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func (r *rendered) one(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range r.kinds(kind) {
		if u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func (r *rendered) env() map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range r.deployment.Spec.Template.Spec.Containers[0].Env {
		m[e.Name] = e
	}
	return m
}

func nested(t *testing.T, u *unstructured.Unstructured, fields ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(u.Object, fields...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %s (%v)", u.GetKind(), u.GetName(), strings.Join(fields, "."), err)
	}
	return v
}

func wantEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// parseConfig feeds the rendered Deployment's arguments and environment (the ConfigMap, literal variables, and
// with auth.method fromSecret a token as the example Secret gives it) through the tracker's own parser, with
// the logger's flags as cmd/deployment-tracker binds them. Files under the credentials mount are made in a
// temporary directory (a token, or a generated App key).
// slackDir is where the chart mounts the Slack token's Secret.
const slackDir = "/var/run/secrets/slack"

func parseConfig(t *testing.T, r *rendered) *config.Config {
	t.Helper()
	c := r.deployment.Spec.Template.Spec.Containers[0]
	cmName := c.EnvFrom[0].ConfigMapRef.Name
	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.one(t, "ConfigMap", cmName).Object, &cm); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"POD_NAMESPACE": releaseNamespace}
	for k, v := range cm.Data {
		env[k] = v
	}
	dir := t.TempDir()
	fromSecret := false
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			fromSecret = true
		case e.ValueFrom != nil:
		case strings.HasPrefix(e.Value, slackDir+"/"): // the Slack token's mounted file
			path := filepath.Join(dir, "slack-"+strings.TrimPrefix(e.Value, slackDir+"/"))
			if err := os.WriteFile(path, []byte("xoxb-test\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env[e.Name] = path
		case strings.HasPrefix(e.Value, credentialsDir+"/"):
			content := []byte("ghp_x\n")
			if e.Name == "GH_APP_PRIV_KEY" {
				_, pemKey, err := githubtest.GenerateAppKey()
				if err != nil {
					t.Fatal(err)
				}
				content = pemKey
			}
			path := filepath.Join(dir, strings.TrimPrefix(e.Value, credentialsDir+"/"))
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			env[e.Name] = path
		default:
			env[e.Name] = e.Value
		}
	}
	if fromSecret {
		env["API_TOKEN"] = "ghp_x"
	}
	fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
	(&zap.Options{}).BindFlags(fs)
	cfg, err := config.Parse(fs, c.Args, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok && v != ""
	})
	if err != nil {
		t.Fatalf("the rendered args %v and environment do not parse: %v", c.Args, err)
	}
	return cfg
}

// TestChartValueSets lints the chart (helm lint --strict) and renders it with each file of its ci/ directory:
// every object decodes strictly into its API type, the tracker parses the rendered arguments and environment,
// the container ports are the ones it listens on, and each value set shows its effect.
func TestChartValueSets(t *testing.T) {
	helm := helmBinary(t)
	sets := []valueSet{
		{file: "default-values.yaml", check: func(t *testing.T, r *rendered) {
			wantEqual(t, "ledger namespace", releaseNamespace, r.cfg.LedgerNamespace)
		}},
		{file: "namespaced-values.yaml", check: func(t *testing.T, r *rendered) {
			wantEqual(t, "ClusterRoleBindings", 0, len(r.kinds("ClusterRoleBinding")))
			wantEqual(t, "tracked namespace", componentNamespace, r.cfg.Namespace)
			role := r.one(t, "Role", "deployment-tracker")
			wantEqual(t, "Role namespace", componentNamespace, role.GetNamespace())
			sel := nested(t, r.one(t, "ValidatingWebhookConfiguration", "deployment-tracker"), "webhooks")
			wantEqual(t, "webhook namespaces", []any{componentNamespace},
				sel.([]any)[0].(map[string]any)["namespaceSelector"].(map[string]any)["matchExpressions"].([]any)[0].(map[string]any)["values"])
		}},
		{file: "app-auth-values.yaml", check: func(t *testing.T, r *rendered) {
			// Eight digits: a float64 printed with %v would be 7.8901234e+07.
			wantEqual(t, "GitHub App", []int64{123456, 78901234}, []int64{r.cfg.AppID, r.cfg.InstallationID})
			env := r.env()
			wantEqual(t, "GH_APP_PRIV_KEY", credentialsDir+"/private-key.pem", env["GH_APP_PRIV_KEY"].Value)
			if _, ok := env["API_TOKEN_FILE"]; ok {
				t.Error("API_TOKEN_FILE set with auth.method app")
			}
			vols := r.deployment.Spec.Template.Spec.Volumes
			i := slices.IndexFunc(vols, func(v corev1.Volume) bool { return v.Name == "github-credentials" })
			if i < 0 || vols[i].Secret == nil || vols[i].Secret.SecretName != "github-app" {
				t.Errorf("credentials volume %+v, want the existing Secret github-app", vols)
			}
			wantEqual(t, "Slack team label", "example.com/team", r.cfg.Slack.TeamLabel)
			wantEqual(t, "NetworkPolicies", 0, len(r.kinds("NetworkPolicy")))
		}},
		{file: "existing-issuer-values.yaml", check: func(t *testing.T, r *rendered) {
			wantEqual(t, "Issuers", 0, len(r.kinds("Issuer")))
			cert := r.one(t, "Certificate", "deployment-tracker-serving-cert")
			wantEqual(t, "issuerRef", map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-ca"},
				nested(t, cert, "spec", "issuerRef"))
			wantEqual(t, "Certificates", 1, len(r.kinds("Certificate")))
			wantEqual(t, "inject-ca-from", "deployment-tracker/deployment-tracker-serving-cert",
				r.one(t, "ValidatingWebhookConfiguration", "deployment-tracker").GetAnnotations()["cert-manager.io/inject-ca-from"])
			wantEqual(t, "API_TOKEN_FILE", credentialsDir+"/token", r.env()["API_TOKEN_FILE"].Value)
			svc := r.one(t, "Service", "deployment-tracker-metrics")
			wantEqual(t, "metrics Service ports", []any{map[string]any{"name": "metrics", "port": int64(9090), "targetPort": "metrics", "protocol": "TCP"}},
				nested(t, svc, "spec", "ports"))
		}},
		{file: "provided-ca-values.yaml", check: func(t *testing.T, r *rendered) {
			for _, kind := range []string{"Issuer", "Certificate"} {
				wantEqual(t, kind+"s", 0, len(r.kinds(kind)))
			}
			wh := r.one(t, "ValidatingWebhookConfiguration", "deployment-tracker")
			if _, ok := wh.GetAnnotations()["cert-manager.io/inject-ca-from"]; ok {
				t.Error("inject-ca-from without cert-manager")
			}
			hook := nested(t, wh, "webhooks").([]any)[0].(map[string]any)
			wantEqual(t, "webhook", []any{"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==", "Fail", int64(5)},
				[]any{hook["clientConfig"].(map[string]any)["caBundle"], hook["failurePolicy"], hook["timeoutSeconds"]})
			wantEqual(t, "TLS volume", "my-webhook-tls", r.deployment.Spec.Template.Spec.Volumes[0].Secret.SecretName)
			// Every flag set: the tracker reads the values.
			cfg := r.cfg
			wantEqual(t, "flags", []any{true, false, "tracker-lease", "", 25, 48 * time.Hour, 4, 60, 1000000, 30 * time.Minute, 15 * time.Second},
				[]any{cfg.DryRun, cfg.LeaderElect, cfg.LeaderElectionID, cfg.LedgerNamespace, cfg.RolloutHistory, cfg.RolloutMaxAge,
					cfg.Workers, cfg.RequestsPerMinute, cfg.RequestsPerHour, cfg.UnknownArtifactTTL, cfg.ShutdownTimeout})
			wantEqual(t, "ports", []any{10443, ":19090", ":18081"}, []any{cfg.WebhookPort, cfg.MetricsBindAddress, cfg.HealthProbeAddr})
			// The NetworkPolicy follows the ports; its sources are the values'.
			wantEqual(t, "NetworkPolicy ingress", []any{
				map[string]any{
					"ports": []any{map[string]any{"port": int64(10443), "protocol": "TCP"}},
					"from":  []any{map[string]any{"ipBlock": map[string]any{"cidr": "172.16.0.0/28"}}},
				},
				map[string]any{"ports": []any{map[string]any{"port": int64(19090), "protocol": "TCP"}}},
			}, nested(t, r.one(t, "NetworkPolicy", "deployment-tracker"), "spec", "ingress"))
			// Helm's labels and commonLabels on every object, selectors unchanged.
			for _, u := range r.objs {
				if u.GetKind() == "CustomResourceDefinition" {
					continue // crds/ is not templated
				}
				for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "team"} {
					if _, ok := u.GetLabels()[l]; !ok {
						t.Errorf("%s: no label %s", objectKey(u), l)
					}
				}
			}
			wantEqual(t, "selector", map[string]string{"app.kubernetes.io/name": "deployment-tracker"}, r.deployment.Spec.Selector.MatchLabels)
		}},
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var tested []string
	for _, s := range sets {
		tested = append(tested, s.file)
	}
	slices.Sort(tested)
	wantEqual(t, "ci/ value files with a check", names, tested)
	for _, s := range sets {
		t.Run(s.file, func(t *testing.T) {
			file := filepath.Join(chartDir, "ci", s.file)
			if out, err := helmRun(helm, "lint", "--strict", chartDir, "--values", file); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out, err := helmTemplate(helm, releaseName, releaseNamespace, "--values", file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := manifest.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			r := &rendered{objs: objs}
			for _, u := range objs {
				obj, err := decodeStrict(u)
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := obj.(*appsv1.Deployment); ok {
					r.deployment = d
				}
			}
			if r.deployment == nil || len(r.deployment.Spec.Template.Spec.Containers) != 1 {
				t.Fatal("want one Deployment with one container")
			}
			r.cfg = parseConfig(t, r)
			ports := map[string]int32{}
			for _, p := range r.deployment.Spec.Template.Spec.Containers[0].Ports {
				ports[p.Name] = p.ContainerPort
			}
			wantEqual(t, "container ports", map[string]int32{
				"webhook": int32(r.cfg.WebhookPort), "metrics": bindPort(t, r.cfg.MetricsBindAddress), "health": bindPort(t, r.cfg.HealthProbeAddr),
			}, ports)
			s.check(t, r)
		})
	}
}

// bindPort is the port of a host:port bind address.
func bindPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	return int32(n)
}

// notExposed are the tracker's flags without a chart value, and why.
var notExposed = map[string]string{
	"kubeconfig":                "in the cluster the tracker uses its ServiceAccount",
	"metrics-port":              "ports.metrics sets -metrics-bind-address; -metrics-port is kept for compatibility",
	"cert-dir":                  "the chart mounts the serving certificate at the default directory",
	"webhook-host":              "the webhook binds all addresses of the pod",
	"leader-election-namespace": "the Lease is in the release namespace, where the chart's Role grants it",
	"zap-devel":                 "logs are JSON in the cluster; extraArgs passes logger flags",
	"zap-encoder":               "logs are JSON in the cluster; extraArgs passes logger flags",
	"zap-stacktrace-level":      "extraArgs passes logger flags",
	"zap-time-encoding":         "extraArgs passes logger flags",
	"pprof-bind-address":        "a debugging endpoint, off by default and unauthenticated: extraArgs sets it for an investigation (bound to 127.0.0.1, reached with kubectl port-forward)",
}

// notExposedEnv are the environment variables the tracker reads without a chart value, and why.
var notExposedEnv = map[string]string{
	"API_TOKEN":   "the chart passes the token as a mounted file (API_TOKEN_FILE), never in the environment",
	"SLACK_TOKEN": "the chart passes the Slack token as a mounted file (SLACK_TOKEN_FILE), never in the environment",
}

// TestChartCoversEveryFlagAndVariable: every flag of the tracker (config.Parse's and the logger's) and every
// environment variable it reads is rendered from a chart value in some ci/ value set, or listed in notExposed
// or notExposedEnv with the reason. A new flag or variable fails this test until it gets a value (and a line
// in a ci/ file: provided-ca-values.yaml sets every flag) or a reason.
func TestChartCoversEveryFlagAndVariable(t *testing.T) {
	helm := helmBinary(t)
	fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
	(&zap.Options{}).BindFlags(fs)
	read := map[string]bool{}
	// Registers the flags, and asks for every variable (without -dry-run, the credentials too).
	_, _ = config.Parse(fs, nil, func(k string) (string, bool) { read[k] = true; return "", false })
	flags, vars := map[string]bool{}, map[string]bool{}
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		out, err := helmTemplate(helm, releaseName, releaseNamespace, "--values", f,
			"--show-only", "templates/deployment.yaml", "--show-only", "templates/configmap.yaml")
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			switch u.GetKind() {
			case "ConfigMap":
				data, _, _ := unstructured.NestedStringMap(u.Object, "data")
				for k := range data {
					vars[k] = true
				}
			case "Deployment":
				var d appsv1.Deployment
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
					t.Fatal(err)
				}
				c := d.Spec.Template.Spec.Containers[0]
				for _, a := range c.Args {
					name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
					flags[name] = true
				}
				for _, e := range c.Env {
					vars[e.Name] = true
				}
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		_, skip := notExposed[f.Name]
		switch {
		// The logger's flags reach the args through extraArgs only, which ci/provided-ca-values.yaml uses.
		case skip && flags[f.Name] && !strings.HasPrefix(f.Name, "zap-"):
			t.Errorf("-%s: listed in notExposed but rendered", f.Name)
		case !skip && !flags[f.Name]:
			t.Errorf("-%s: no chart value renders it (add one to values.yaml, values.schema.json and ci/provided-ca-values.yaml, or a reason to notExposed)", f.Name)
		}
	})
	for name := range notExposed {
		if fs.Lookup(name) == nil {
			t.Errorf("notExposed lists -%s, which the tracker no longer has", name)
		}
	}
	if len(read) == 0 {
		t.Fatal("config.Parse read no environment variable")
	}
	for k := range read {
		_, skip := notExposedEnv[k]
		switch {
		case skip && vars[k]:
			t.Errorf("%s: listed in notExposedEnv but rendered", k)
		case !skip && !vars[k]:
			t.Errorf("%s: the tracker reads it, but no chart value renders it (or add a reason to notExposedEnv)", k)
		}
	}
	for k := range notExposedEnv {
		if !read[k] {
			t.Errorf("notExposedEnv lists %s, which the tracker no longer reads", k)
		}
	}
}

// TestChartRefusesBadValues: the required values, the exactly-one authentication method and the other
// checks of templates/_helpers.tpl (dt.validate), and values.schema.json, fail the render with a message naming
// the value.
func TestChartRefusesBadValues(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct {
		name    string
		set     []string // after requiredValues; "key=" unsets a required one
		wantErr string
	}{
		{"no org", []string{"org="}, "org (ORG) is required"},
		{"no logical environment", []string{"logicalEnvironment="}, "logicalEnvironment (LOGICAL_ENVIRONMENT) is required"},
		{"no cluster", []string{"cluster="}, "cluster (CLUSTER) is required"},
		{"App without installation", []string{"auth.method=app", "auth.app.id=1"}, "auth.method=app needs auth.app.id (GH_APP_ID) and auth.app.installationID"},
		{"token and App", []string{"auth.method=token", "auth.app.id=1", "auth.app.installationID=2"}, "use exactly one authentication method"},
		{"unknown method", []string{"auth.method=both"}, "auth.method"},
		{"replicas without a leader", []string{"leaderElection.enabled=false"}, "replicas > 1 needs leaderElection.enabled"},
		{"issuer without a name", []string{"webhook.certificate.source=issuer"}, "webhook.certificate.issuerRef.name"},
		{"provided without a CA", []string{"webhook.certificate.source=provided"}, "webhook.certificate.provided.caBundle"},
		{"failure policy", []string{"webhook.failurePolicy=Sometimes"}, "webhook.failurePolicy"},
		{"timeout", []string{"webhook.timeoutSeconds=60"}, "webhook.timeoutSeconds"},
		{"watching its own namespace", []string{"watchNamespace=" + releaseNamespace}, "watchNamespace must not be the release namespace"},
		{"rollout history", []string{"rollouts.history=0"}, "rollouts.history"},
		{"rollout max age", []string{"rollouts.maxAge=30 days"}, "rollouts.maxAge"},
		{"ledger retention", []string{"ledger.retention=7 days"}, "ledger.retention"},
		{"misspelt value", []string{"clustr=x"}, "clustr"},
		{"network policy peer of no kind", []string{"networkPolicy.webhookFrom[0].cidr=10.0.0.0/8"}, "networkPolicy.webhookFrom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Clone(requiredValues)
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, err := helmTemplate(helm, releaseName, releaseNamespace, args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("helm template error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("dry run needs no org", func(t *testing.T) {
		if _, err := helmTemplate(helm, releaseName, releaseNamespace, append(slices.Clone(requiredValues), "--set", "org=", "--set", "dryRun=true")...); err != nil {
			t.Error(err)
		}
	})
}
