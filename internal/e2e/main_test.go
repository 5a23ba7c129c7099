// Package e2e runs the tracker against a real control plane on 127.0.0.1 (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok's fake nodes, see internal/testenv) and a GitHub API test
// server (internal/githubtest). The API server calls the tracker's webhook over TLS with the shipped
// ValidatingWebhookConfiguration, and the tracker runs with the shipped ServiceAccount's RBAC only.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/deployment-tracker/deployment-tracker/deploy"
	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

const (
	org                 = "octo-org"
	cluster             = "e2e"
	logicalEnvironment  = "staging"
	physicalEnvironment = "loopback"
	trackerNamespace    = "deployment-tracker"
	serviceAccount      = "deployment-tracker"
	appID               = 4242
	installationID      = 77
)

var (
	env     *testenv.Env
	gh      *githubtest.Server
	tracker *instance
	keyPath string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(testLogger())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vwc, err := deploy.WebhookConfiguration()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env, err = testenv.Start(ctx, testenv.Options{
		Scheme: scheme,
		Webhooks: &envtest.WebhookInstallOptions{
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{vwc},
		},
	})
	if errors.Is(err, testenv.ErrBinariesMissing) && os.Getenv("CI") != "true" {
		fmt.Fprintln(os.Stderr, "e2e: skipped:", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the control plane:", err)
		return 1
	}
	code := 1
	defer func() {
		if code != 0 {
			env.KeepLog()
			fmt.Fprintln(os.Stderr, "e2e: control plane log kept at", env.LogPath)
		}
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		}
	}()
	if err := installRBAC(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	key, pemKey, err := githubtest.GenerateAppKey()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "deployment-tracker-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	keyPath = filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyPath, pemKey, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	gh, err = githubtest.New(githubtest.Options{
		Org: org,
		App: &githubtest.AppAuth{AppID: appID, InstallationID: installationID, PublicKey: &key.PublicKey},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer gh.Close()
	tracker, err = startTracker(ctx, trackerSettings{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the tracker:", err)
		return 1
	}
	code = m.Run()
	if err := tracker.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the tracker stopped with an error:", err)
		code = 1
	}
	return code
}

// installRBAC applies the shipped namespace, ServiceAccount and RBAC objects (server-side apply, as kubectl
// apply --server-side would), so the tracker runs with exactly the permissions it ships with.
func installRBAC(ctx context.Context) error {
	objs, err := deploy.Objects()
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if err := env.Client.Patch(ctx, o, client.Apply, client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	// The ledger's CRDs must be served before the tracker starts.
	for {
		err := env.Client.List(ctx, &v1alpha1.DeploymentRecordList{}, client.InNamespace(trackerNamespace))
		if err == nil {
			err = env.Client.List(ctx, &v1alpha1.RolloutRecordList{}, client.InNamespace(trackerNamespace))
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the DeploymentRecord CRD is not served: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
