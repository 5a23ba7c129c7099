package preflight

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/config"
)

// validEnv is a configuration config.Parse accepts.
func validEnv(extra map[string]string) config.Env {
	vars := map[string]string{"ORG": "octo-org", "LOGICAL_ENVIRONMENT": "staging", "CLUSTER": "c1", "API_TOKEN": testToken}
	for k, v := range extra {
		vars[k] = v
	}
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok && v != "" }
}

func TestMainExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        config.Env
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{
			name:       "help",
			args:       []string{"-h"},
			env:        validEnv(nil),
			wantCode:   0,
			wantStdout: "Usage: deployment-tracker check [flags]",
		},
		{
			name:       "bad configuration names every problem",
			env:        func(string) (string, bool) { return "", false },
			wantCode:   2,
			wantStderr: []string{"invalid configuration", "LOGICAL_ENVIRONMENT", "CLUSTER", "ORG", "API_TOKEN"},
		},
		{
			name:       "unknown flag",
			args:       []string{"-no-such-flag"},
			env:        validEnv(nil),
			wantCode:   2,
			wantStderr: []string{"no-such-flag"},
		},
		{
			name:       "missing kubeconfig",
			args:       []string{"-kubeconfig=" + filepath.Join(t.TempDir(), "nope")},
			env:        validEnv(nil),
			wantCode:   2,
			wantStderr: []string{"-kubeconfig"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tt.args, tt.env, Options{Stdout: &stdout, Stderr: &stderr})
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		inCluster bool
		want      Config
	}{
		{
			name: "workstation defaults",
			want: Config{Namespace: "deployment-tracker", LedgerNamespace: "deployment-tracker", ServiceAccount: "deployment-tracker",
				WebhookConfiguration: "deployment-tracker", AsServiceAccount: true, CredentialVariables: "API_TOKEN"},
		},
		{
			name:      "in the cluster",
			env:       map[string]string{"POD_NAMESPACE": "tools"},
			inCluster: true,
			want: Config{Namespace: "tools", LedgerNamespace: "tools", ServiceAccount: "deployment-tracker",
				WebhookConfiguration: "deployment-tracker", CredentialVariables: "API_TOKEN"},
		},
		{
			name: "check flags win",
			args: []string{"-check-namespace=ops", "-check-serviceaccount=dt", "-check-webhook-configuration=dt-hook",
				"-check-as-serviceaccount=false", "-ledger-namespace=ledger"},
			env: map[string]string{"POD_NAMESPACE": "tools"},
			want: Config{Namespace: "ops", LedgerNamespace: "ledger", ServiceAccount: "dt", WebhookConfiguration: "dt-hook",
				CredentialVariables: "API_TOKEN"},
		},
		{
			name:      "service account asked for in the cluster",
			args:      []string{"-check-as-serviceaccount"},
			inCluster: true,
			want: Config{Namespace: "deployment-tracker", LedgerNamespace: "deployment-tracker", ServiceAccount: "deployment-tracker",
				WebhookConfiguration: "deployment-tracker", AsServiceAccount: true, CredentialVariables: "API_TOKEN"},
		},
		{
			name: "no ledger, token file",
			args: []string{"-ledger-namespace=-"},
			env:  map[string]string{"API_TOKEN": "", "API_TOKEN_FILE": writeToken(t)},
			want: Config{Namespace: "deployment-tracker", ServiceAccount: "deployment-tracker", WebhookConfiguration: "deployment-tracker",
				AsServiceAccount: true, CredentialVariables: "API_TOKEN_FILE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("check", flag.ContinueOnError)
			var cf checkFlags
			cf.bind(fs)
			env := validEnv(tt.env)
			cfg, err := config.Parse(fs, tt.args, env)
			if err != nil {
				t.Fatal(err)
			}
			got := configure(fs, cfg, cf, env, tt.inCluster)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Config{}, "Tracker")); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
		})
	}
}

func writeToken(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
