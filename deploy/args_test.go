package deploy_test

import (
	"flag"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
)

// TestShippedArgsAndConfigParse feeds the shipped Deployment's args and ConfigMap (with the values an
// installer fills in) through the tracker's own configuration parser: every shipped flag and key is real.
func TestShippedArgsAndConfigParse(t *testing.T) {
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	var cm corev1.ConfigMap
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &dep)
		case "ConfigMap":
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dep.Spec.Template.Spec.Containers) == 0 || len(cm.Data) == 0 {
		t.Fatal("no Deployment container or ConfigMap among the shipped objects")
	}
	env := map[string]string{"POD_NAMESPACE": dep.Namespace, "API_TOKEN": "ghp_x"}
	for k, v := range cm.Data {
		env[k] = v
	}
	env["ORG"], env["LOGICAL_ENVIRONMENT"], env["CLUSTER"] = "octo-org", "production", "prod-eu-1"
	c := dep.Spec.Template.Spec.Containers[0]
	cfg, err := config.Parse(flag.NewFlagSet("tracker", flag.ContinueOnError), c.Args, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok && v != ""
	})
	if err != nil {
		t.Fatalf("the shipped args %v and ConfigMap do not parse: %v", c.Args, err)
	}
	if !cfg.LeaderElect || cfg.LeaderElectionNamespace != dep.Namespace {
		t.Errorf("leader election %t in %q, want on in %q", cfg.LeaderElect, cfg.LeaderElectionNamespace, dep.Namespace)
	}
	for _, p := range c.Ports {
		if p.Name == "webhook" && p.ContainerPort != int32(cfg.WebhookPort) {
			t.Errorf("container port %d, the tracker listens on %d", p.ContainerPort, cfg.WebhookPort)
		}
	}
}
