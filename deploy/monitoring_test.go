package deploy_test

// Tests of the monitoring kit (monitoring/, a kustomize Component, and the chart's monitoring.* values): every
// expression of its alerts and dashboard uses only metrics the tracker exports, and the chart renders the
// Component's objects. The expressions are checked without the Prometheus PromQL parser: its module
// (github.com/prometheus/prometheus) requires newer Kubernetes libraries than this module builds with. Instead,
// a small lexer checks that brackets and quotes balance, and a regular expression finds the metric names.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
	"github.com/deployment-tracker/deployment-tracker/deploy/monitoring"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// monitoringValues turn on every object of the kit in the chart.
var monitoringValues = []string{
	"--set", "monitoring.enabled=true", "--set", "monitoring.podMonitor.enabled=true",
	"--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.dashboard.enabled=true",
}

// metricName matches the names of the tracker's metrics and controller-runtime's in an expression. Label names
// never start with these prefixes.
var metricName = regexp.MustCompile(`\b(?:deptracker|controller_runtime)_[a-z_]+\b`)

// exportedMetrics returns the names a scrape of the tracker can show, and whether each is a histogram (whose
// series are name_bucket, name_sum and name_count): the collectors of metrics.New (the delivery and Flux
// metrics among them, in their groups), and those controller-runtime
// registers for its controllers, read from the source of the controller-runtime module this module builds with
// (they are in an internal package, registered in its init).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	m := metrics.New(prometheus.NewRegistry())
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	// The fields of metrics.Metrics are collectors, or groups of them (a pointer to a struct of collectors, such
	// as metrics.Delivery and metrics.Flux).
	var collect func(v reflect.Value, path string)
	collect = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			field, name := v.Field(i), path+"."+v.Type().Field(i).Name
			if !v.Type().Field(i).IsExported() {
				continue
			}
			c, ok := field.Interface().(prometheus.Collector)
			if !ok {
				if field.Kind() == reflect.Pointer && !field.IsNil() && field.Elem().Kind() == reflect.Struct {
					collect(field.Elem(), name)
					continue
				}
				t.Fatalf("%s is not a collector nor a group of them", name)
			}
			_, histogram := c.(prometheus.Histogram)
			if _, ok := c.(*prometheus.HistogramVec); ok {
				histogram = true
			}
			ch := make(chan *prometheus.Desc, 1)
			go func() { c.Describe(ch); close(ch) }()
			for d := range ch {
				sub := fqName.FindStringSubmatch(d.String())
				if sub == nil {
					t.Fatalf("no name in %s", d)
				}
				names[sub[1]] = histogram
			}
		}
	}
	collect(reflect.ValueOf(m).Elem(), "metrics.Metrics")
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime").Output()
	if err != nil {
		t.Fatalf("go list -m sigs.k8s.io/controller-runtime: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "pkg", "internal", "controller", "metrics", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`prometheus\.New(Counter|Gauge|Histogram|Summary)(?:Vec)?\(prometheus\.\w+Opts\{\s*Name:\s*"(controller_runtime_[a-z_]+)"`)
	found := decl.FindAllStringSubmatch(string(src), -1)
	if len(found) == 0 {
		t.Fatal("no metric declarations found in controller-runtime's pkg/internal/controller/metrics")
	}
	for _, f := range found {
		names[f[2]] = f[1] == "Histogram"
	}
	return names
}

// checkExpr reports what is wrong with a PromQL expression: unbalanced brackets or quotes, no metric at all,
// or a metric name the tracker does not export.
func checkExpr(expr string, exported map[string]bool) []error {
	var errs []error
	var stack []rune
	var quote rune
	closing := map[rune]rune{')': '(', '}': '{', ']': '['}
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '{' || r == '[':
			stack = append(stack, r)
		case closing[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != closing[r] {
				return append(errs, fmt.Errorf("unbalanced %q", r))
			}
			stack = stack[:len(stack)-1]
		}
	}
	if quote != 0 || len(stack) > 0 {
		errs = append(errs, fmt.Errorf("unclosed %q", string(stack)+string(quote)))
	}
	used := metricName.FindAllString(expr, -1)
	if len(used) == 0 {
		errs = append(errs, fmt.Errorf("uses no metric of the tracker"))
	}
	for _, name := range used {
		if _, ok := exported[name]; ok {
			continue
		}
		base := name
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, s)
		}
		if base == name || !exported[base] {
			errs = append(errs, fmt.Errorf("metric %s is not exported by the tracker", name))
		}
	}
	return errs
}

func monitoringObject(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs, err := monitoring.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == kind {
			return u
		}
	}
	t.Fatalf("no %s in monitoring/", kind)
	return nil
}

func TestCheckExpr(t *testing.T) {
	exported := map[string]bool{"deptracker_a": false, "deptracker_h_seconds": true}
	tests := []struct {
		name, expr string
		wantErrs   int
	}{
		{"valid", `sum by (x) (rate(deptracker_a{y="(]"}[5m])) > 0`, 0},
		{"histogram series", `histogram_quantile(0.9, sum by (le) (rate(deptracker_h_seconds_bucket[5m])))`, 0},
		{"suffix of a counter", `deptracker_a_count`, 1},
		{"unknown metric", `rate(deptracker_b[5m])`, 1},
		{"no metric", `vector(1)`, 1},
		{"unbalanced", `sum(rate(deptracker_a[5m])`, 1},
		{"crossed", `sum(rate(deptracker_a[5m)])`, 1},
		{"unclosed quote", `deptracker_a{y="x}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if errs := checkExpr(tt.expr, exported); len(errs) != tt.wantErrs {
				t.Errorf("checkExpr(%q) = %v, want %d errors", tt.expr, errs, tt.wantErrs)
			}
		})
	}
}

// TestAlertsUseExportedMetrics: every alert of the PrometheusRule has a well-formed expression over metrics the
// tracker exports, a for: duration, a severity label and summary, description and runbook annotations.
func TestAlertsUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	u := monitoringObject(t, "PrometheusRule")
	var spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	data, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || seen[r.Alert] {
					t.Fatalf("alert name %q empty or repeated", r.Alert)
				}
				seen[r.Alert] = true
				for _, err := range checkExpr(r.Expr, exported) {
					t.Errorf("expr: %v\n%s", err, r.Expr)
				}
				if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
					t.Errorf("for: %q, want a positive duration (%v)", r.For, err)
				}
				if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
					t.Errorf("severity label %q, want critical, warning or info", s)
				}
				for _, a := range []string{"summary", "description", "runbook"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("no %s annotation", a)
					}
				}
			})
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alert in the PrometheusRule")
	}
}

// dashboardPanel is the part of a Grafana panel the test reads; rows may hold panels.
type dashboardPanel struct {
	Type    string           `json:"type"`
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestDashboardUsesExportedMetrics: the dashboard ConfigMap carries the Grafana sidecar's label and valid JSON
// whose every panel queries, and every query variable, use metrics the tracker exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	u := monitoringObject(t, "ConfigMap")
	if got := u.GetLabels()["grafana_dashboard"]; got != "1" {
		t.Errorf("label grafana_dashboard = %q, want \"1\"", got)
	}
	raw, _, _ := unstructured.NestedString(u.Object, "data", monitoring.DashboardKey)
	var dash struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("data.%s: %v", monitoring.DashboardKey, err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both", dash.UID, dash.Title)
	}
	panels := 0
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			panels++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no query", p.Title)
			}
			for _, q := range p.Targets {
				for _, err := range checkExpr(q.Expr, exported) {
					t.Errorf("panel %q: %v\n%s", p.Title, err, q.Expr)
				}
			}
		}
	}
	walk(dash.Panels)
	if panels == 0 {
		t.Fatal("no panel in the dashboard")
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, ok := v.Query.(map[string]any)
		expr, _ := q["query"].(string)
		if !ok || expr == "" {
			t.Errorf("variable %s: no query", v.Name)
			continue
		}
		for _, err := range checkExpr(expr, exported) {
			t.Errorf("variable %s: %v", v.Name, err)
		}
	}
}

// TestDashboardCoversTheTrackersHealth: the dashboard shows what an operator looks at first.
func TestDashboardCoversTheTrackersHealth(t *testing.T) {
	u := monitoringObject(t, "ConfigMap")
	raw, _, _ := unstructured.NestedString(u.Object, "data", monitoring.DashboardKey)
	for _, m := range []string{
		"deptracker_post_record_ok", "deptracker_post_record_soft_fail", "deptracker_post_record_hard_fail",
		"deptracker_post_deployment_record_timer_bucket", "deptracker_record_latency_seconds_bucket",
		"deptracker_pending_records", "deptracker_queue_depth", "deptracker_admission_requests_total",
		"deptracker_rollout_notifications_total", "controller_runtime_reconcile_errors_total",
	} {
		if !strings.Contains(raw, m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// deliverySelector matches a selector of a delivery metric (internal/metrics.Delivery) in an expression.
var deliverySelector = regexp.MustCompile(`\b(deptracker_(?:deployments_total|lead_time_seconds|rollouts_failed_total|time_to_restore_seconds|rollouts_without_commit_total|rollout_duration_seconds)(?:_bucket|_sum|_count)?)(\{[^}]*\})?`)

// TestDashboardCoversDelivery: the dashboard shows the four DORA keys and Flux's apply lead time, per
// environment and workload: every selector of a delivery metric filters by the environment, workload namespace
// and workload variables. The workload's namespace is exported_namespace: the scrape's own namespace label (the
// tracker's pod) takes the metric's namespace label's place.
func TestDashboardCoversDelivery(t *testing.T) {
	u := monitoringObject(t, "ConfigMap")
	raw, _, _ := unstructured.NestedString(u.Object, "data", monitoring.DashboardKey)
	for _, m := range []string{
		"deptracker_deployments_total", "deptracker_lead_time_seconds_bucket", "deptracker_rollouts_failed_total",
		"deptracker_time_to_restore_seconds_bucket", "deptracker_flux_apply_lead_time_seconds_bucket",
		"deptracker_rollouts_without_commit_total", "deptracker_flux_revisions_without_commit_total",
		`stage=\"complete\"`, `"title": "Delivery (DORA)"`,
	} {
		if !strings.Contains(raw, m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
	var dash struct {
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"environment", "workload_namespace", "workload", "kustomization"} {
		if !vars[v] {
			t.Errorf("no variable %s", v)
		}
	}
	filters := []string{`namespace="$namespace"`, `environment=~"$environment"`, `exported_namespace=~"$workload_namespace"`, `workload=~"$workload"`}
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, q := range p.Targets {
				for _, m := range deliverySelector.FindAllStringSubmatch(q.Expr, -1) {
					for _, f := range filters {
						if !strings.Contains(m[2], f) {
							t.Errorf("panel %q: %s%s does not filter by %s", p.Title, m[1], m[2], f)
						}
					}
				}
			}
		}
	}
	walk(dash.Panels)
}

// TestChartMonitoringMatchesComponent: with every monitoring toggle on, the chart renders the kustomize install
// with the monitoring Component, object for object (the Namespace aside, as in TestChartMatchesKustomize); each
// toggle alone adds its own object only.
func TestChartMonitoringMatchesComponent(t *testing.T) {
	helm := helmBinary(t)
	kit, err := monitoring.Objects()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("all toggles", func(t *testing.T) {
		got := renderChart(t, helm, append(slices.Clone(requiredValues), monitoringValues...)...)
		want := without(append(kustomizeObjects(t), kit...), "Namespace")
		if err := diffObjects(want, got); err != nil {
			t.Error(err)
		}
	})
	base := renderChart(t, helm, requiredValues...)
	for _, tt := range []struct{ value, kind string }{
		{"monitoring.enabled", "Service"},
		{"monitoring.podMonitor.enabled", "PodMonitor"},
		{"monitoring.prometheusRule.enabled", "PrometheusRule"},
		{"monitoring.dashboard.enabled", "ConfigMap"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			got := renderChart(t, helm, append(slices.Clone(requiredValues), "--set", tt.value+"=true")...)
			var want []*unstructured.Unstructured
			want = append(want, base...)
			for _, u := range kit {
				if u.GetKind() == tt.kind {
					want = append(want, u)
				}
			}
			if len(want) != len(base)+1 {
				t.Fatalf("monitoring/ has %d objects of kind %s, want 1", len(want)-len(base), tt.kind)
			}
			if err := diffObjects(want, got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestChartMonitoringValues: the labels for the Prometheus' selectors, the scrape interval and the dashboard's
// namespace and annotations reach their objects, and the names follow the release.
func TestChartMonitoringValues(t *testing.T) {
	helm := helmBinary(t)
	out, err := helmTemplate(helm, "tracker", "ns-under-test", append(append(slices.Clone(requiredValues), monitoringValues...),
		"--set", "monitoring.podMonitor.labels.release=kube-prometheus-stack",
		"--set", "monitoring.podMonitor.interval=1m",
		"--set", "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
		"--set", "monitoring.dashboard.namespace=grafana",
		"--set", "monitoring.dashboard.annotations.grafana_folder=Platform",
		"--set", "monitoring.dashboard.labels.grafana_dashboard=null",
		"--set", "monitoring.dashboard.labels.dashboards=deployment-tracker",
	)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{objs: objs}
	const fullname = "tracker-deployment-tracker"
	pm := r.one(t, "PodMonitor", fullname)
	wantEqual(t, "PodMonitor labels", map[string]string{"app.kubernetes.io/name": "deployment-tracker", "release": "kube-prometheus-stack"}, pm.GetLabels())
	wantEqual(t, "PodMonitor interval", "1m", nested(t, pm, "spec", "podMetricsEndpoints").([]any)[0].(map[string]any)["interval"])
	pr := r.one(t, "PrometheusRule", fullname)
	wantEqual(t, "PrometheusRule labels", map[string]string{"app.kubernetes.io/name": "deployment-tracker", "release": "kube-prometheus-stack"}, pr.GetLabels())
	rules, err := json.Marshal(pr.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`namespace=\"ns-under-test\"`, "deploy/" + fullname, "PodMonitor ns-under-test/" + fullname} {
		if !strings.Contains(string(rules), s) {
			t.Errorf("the PrometheusRule does not name %s", s)
		}
	}
	cm := r.one(t, "ConfigMap", fullname+"-dashboard")
	wantEqual(t, "dashboard namespace", "grafana", cm.GetNamespace())
	wantEqual(t, "dashboard labels", map[string]string{"app.kubernetes.io/name": "deployment-tracker", "dashboards": "deployment-tracker"}, cm.GetLabels())
	wantEqual(t, "dashboard annotations", map[string]string{"grafana_folder": "Platform"}, cm.GetAnnotations())
}

// TestKustomizeBuildWithMonitoring checks the premise of TestChartMonitoringMatchesComponent with kustomize
// itself, where kubectl is installed: an overlay of deploy/ with the monitoring Component builds exactly
// deploy.Objects, certs.Objects and monitoring.Objects.
func TestKustomizeBuildWithMonitoring(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not in PATH: the kustomize build is not cross-checked")
	}
	overlay := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(overlay, wd) // kustomize refuses absolute paths
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("resources: [%s]\ncomponents: [%s]\n", rel, filepath.Join(rel, "monitoring"))
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", overlay).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	got, err := manifest.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	fillConfig(t, got)
	kit, err := monitoring.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if err := diffObjects(append(kustomizeObjects(t), kit...), got); err != nil {
		t.Error(err)
	}
}
