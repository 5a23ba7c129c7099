package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/deployment-tracker/deployment-tracker/deploy/monitoring"
)

// TestMonitoringKitIsAccepted installs the Prometheus Operator's PodMonitor and PrometheusRule CRDs (from the
// prometheus-operator Go module, at monitoring.PrometheusOperatorVersion) and server-side applies every object
// of deploy/monitoring with strict field validation, for real, in a namespace of its own: the API server
// validates them against the CRDs' schemas (durations, severities as strings, known fields only), and reading
// them back shows that nothing was pruned. A rule the schema refuses proves the validation is in force.
func TestMonitoringKitIsAccepted(t *testing.T) {
	ctx := ctxFor(t)
	paths, err := monitoring.CRDPaths()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing prometheus-operator CRDs: %v", err)
	}
	ns := newNamespace(t)
	objs, err := monitoring.Objects()
	if err != nil {
		t.Fatal(err)
	}
	apply := func(o *unstructured.Unstructured) error {
		return env.Client.Patch(ctx, o, client.Apply, client.FieldOwner("e2e"), client.ForceOwnership, client.FieldValidation("Strict"))
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		o.SetNamespace(ns)
		sent := o.DeepCopy()
		// Patch writes the stored object into its argument: o stays as shipped, for the refused rules below.
		if err := apply(o.DeepCopy()); err != nil {
			t.Errorf("server-side apply of %s %s: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		kinds[o.GetKind()] = true
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"spec", "data"} {
			want, ok := sent.Object[field]
			if !ok || o.GetKind() == "Service" { // the API server fills in a Service's spec (clusterIP, ...)
				continue
			}
			if diff := cmp.Diff(want, got.Object[field]); diff != "" {
				t.Errorf("%s %s: %s changed by the API server (-applied +stored):\n%s", o.GetKind(), o.GetName(), field, diff)
			}
		}
	}
	for _, k := range []string{"Service", "PodMonitor", "PrometheusRule", "ConfigMap"} {
		if !kinds[k] {
			t.Errorf("no %s of deploy/monitoring accepted", k)
		}
	}

	bad := []struct {
		name    string
		change  func(rule map[string]any)
		wantErr string
	}{
		{"for: not a duration", func(rule map[string]any) { rule["for"] = "15 minutes" }, "spec.groups[0].rules[0].for"},
		{"an unknown field", func(rule map[string]any) { rule["severity"] = "warning" }, "rules[0].severity: field not declared in schema"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			for _, o := range objs {
				if o.GetKind() != "PrometheusRule" {
					continue
				}
				pr := o.DeepCopy()
				pr.SetName("refused")
				groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
				rules := groups[0].(map[string]any)["rules"].([]any)
				b.change(rules[0].(map[string]any))
				if err := unstructured.SetNestedSlice(pr.Object, groups, "spec", "groups"); err != nil {
					t.Fatal(err)
				}
				if err := apply(pr); err == nil || !strings.Contains(err.Error(), b.wantErr) {
					t.Errorf("server-side apply: %v, want an error naming %s", err, b.wantErr)
				}
				return
			}
			t.Fatal("no PrometheusRule in deploy/monitoring")
		})
	}
}
