// Package monitoring holds the optional monitoring kit of the tracker (the *.yaml files beside this file, a
// kustomize Component): the metrics Service, a PodMonitor and a PrometheusRule for the Prometheus Operator,
// and a Grafana dashboard in a ConfigMap. Use it from an overlay of your own:
//
//	resources:  [../deploy]
//	components: [../deploy/monitoring]
//
// CRDPaths locates the Prometheus Operator's CustomResourceDefinitions in the Go module cache, for tests that
// install them into a test API server.
package monitoring

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
)

//go:embed *.yaml
var files embed.FS

// Names of the kit's objects, in the namespace deployment-tracker.
const (
	ServiceName        = "deployment-tracker-metrics"
	PodMonitorName     = "deployment-tracker"
	PrometheusRuleName = "deployment-tracker"
	DashboardName      = "deployment-tracker-dashboard"
	// DashboardKey is the ConfigMap key of the dashboard JSON.
	DashboardKey = "deployment-tracker.json"
)

// Objects returns the kit's objects in file-name order: dashboard ConfigMap, metrics Service, PodMonitor,
// PrometheusRule. Each call decodes the embedded files again, so callers may modify the returned objects.
func Objects() ([]*unstructured.Unstructured, error) {
	objs, err := manifest.Load(files)
	if err != nil {
		return nil, fmt.Errorf("monitoring manifests: %w", err)
	}
	return objs, nil
}

// PrometheusOperatorModule is the Go module whose example/prometheus-operator-crd directory holds the
// Prometheus Operator's CRDs, and PrometheusOperatorVersion the version whose CRDs the kit is tested against.
// The module is not a dependency of this one (its API types are not used, and it requires newer Kubernetes
// libraries): CRDPaths downloads it into the module cache.
const (
	PrometheusOperatorModule  = "github.com/prometheus-operator/prometheus-operator"
	PrometheusOperatorVersion = "v0.85.0"
)

// CRDPaths returns the files of the PodMonitor and PrometheusRule CRDs of PrometheusOperatorVersion in the Go
// module cache, for envtest's CRDInstallOptions.Paths. It runs go mod download outside any module (so that no
// go.mod or go.sum is touched), which answers from the cache when the module is there, and needs the go command
// in PATH.
func CRDPaths() ([]string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", PrometheusOperatorModule+"@"+PrometheusOperatorVersion)
	cmd.Dir = os.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// With -json, go mod download reports a failure to download in the Error field of its output.
	var dl struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &dl); jerr == nil && dl.Error != "" {
		return nil, fmt.Errorf("prometheus-operator CRDs: go mod download: %s", dl.Error)
	}
	if err != nil {
		return nil, fmt.Errorf("prometheus-operator CRDs: go mod download: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if dl.Dir == "" {
		return nil, fmt.Errorf("prometheus-operator CRDs: go mod download printed no module directory: %q", out)
	}
	dir := filepath.Join(dl.Dir, "example", "prometheus-operator-crd")
	var paths []string
	for _, f := range []string{"monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("prometheus-operator CRDs: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
