package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// secretToken is the token in the test environments; no error may contain it.
const secretToken = "ghp_s3cr3tT0kenValue"

// baseEnv is the smallest valid environment outside dry-run.
func baseEnv() map[string]string {
	return map[string]string{
		"ORG":                 "octo-org",
		"LOGICAL_ENVIRONMENT": "production",
		"CLUSTER":             "moda-1",
		"API_TOKEN":           secretToken,
	}
}

// envOf returns an Env over base with set applied and unset removed.
func envOf(set map[string]string, unset []string) Env {
	m := baseEnv()
	for k, v := range set {
		m[k] = v
	}
	for _, k := range unset {
		delete(m, k)
	}
	return func(key string) (string, bool) { v, ok := m[key]; return v, ok }
}

// defaults is the Config of baseEnv without flags.
func defaults() *Config {
	return &Config{
		MetricsPort:        9090,
		WebhookPort:        9443,
		CertDir:            "/tmp/k8s-webhook-server/serving-certs",
		HealthProbeAddr:    ":8081",
		LeaderElectionID:   "deployment-tracker",
		Workers:            2,
		RequestsPerMinute:  80,
		RequestsPerHour:    500,
		UnknownArtifactTTL: time.Hour,
		ShutdownTimeout:    20 * time.Second,
		RolloutHistory:     10,
		RolloutMaxAge:      30 * 24 * time.Hour,
		Org:                "octo-org",
		BaseURL:            "https://api.github.com",
		TemplateText:       record.DefaultTemplate,
		LogicalEnvironment: "production",
		Cluster:            "moda-1",
		APIToken:           secretToken,
	}
}

// testFiles are the files the tests point API_TOKEN_FILE and GH_APP_PRIV_KEY at.
type testFiles struct {
	token, tokenNoNewline, empty, blank, key, missing string
}

func writeFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	f := testFiles{
		token:          filepath.Join(dir, "token"),
		tokenNoNewline: filepath.Join(dir, "token-no-newline"),
		empty:          filepath.Join(dir, "empty"),
		blank:          filepath.Join(dir, "blank"),
		key:            filepath.Join(dir, "key.pem"),
		missing:        filepath.Join(dir, "missing"),
	}
	for path, content := range map[string]string{
		f.token:          "  " + secretToken + "\r\n", // as kubectl create secret --from-file leaves it, or worse
		f.tokenNoNewline: secretToken,
		f.empty:          "",
		f.blank:          " \n\t\n",
		f.key:            "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestParse(t *testing.T) {
	files := writeFiles(t)
	tests := []struct {
		name  string
		args  []string
		set   map[string]string
		unset []string
		want  func(c *Config) // applied to defaults()
	}{
		{name: "defaults", want: func(*Config) {}},
		{
			name: "every flag",
			args: []string{
				"-kubeconfig=/home/me/.kube/config", "-namespace=payments", "-workers=8",
				"-metrics-port=0", "-webhook-port=8443", "-webhook-host=127.0.0.1", "-cert-dir=/certs",
				"-health-probe-bind-address=:9000", "-leader-elect", "-leader-election-namespace=tracker",
				"-leader-election-id=dt", "-github-requests-per-minute=0", "-github-requests-per-hour=0",
				"-unknown-artifact-ttl=0s", "-shutdown-timeout=1m30s", "-rollout-history=3", "-rollout-max-age=168h",
			},
			want: func(c *Config) {
				c.Kubeconfig, c.Namespace, c.Workers = "/home/me/.kube/config", "payments", 8
				c.MetricsPort, c.WebhookPort, c.WebhookHost, c.CertDir = 0, 8443, "127.0.0.1", "/certs"
				c.HealthProbeAddr, c.LeaderElect, c.LeaderElectionNamespace, c.LeaderElectionID = ":9000", true, "tracker", "dt"
				c.RequestsPerMinute, c.RequestsPerHour, c.UnknownArtifactTTL, c.ShutdownTimeout = 0, 0, 0, 90*time.Second
				c.RolloutHistory, c.RolloutMaxAge = 3, 7*24*time.Hour
			},
		},
		{
			name: "Slack from a token file",
			set:  map[string]string{"SLACK_TOKEN_FILE": files.token, "SLACK_CHANNEL": " #deploys ", "SLACK_API_URL": "http://127.0.0.1:1/api/"},
			want: func(c *Config) {
				c.Slack = SlackConfig{Token: secretToken, Channel: "#deploys", APIURL: "http://127.0.0.1:1/api/"}
			},
		},
		{
			name: "Slack from a token",
			set:  map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "C0123"},
			want: func(c *Config) { c.Slack = SlackConfig{Token: "xoxb-1", Channel: "C0123"} },
		},
		{
			name: "workers at the bounds",
			args: []string{"-workers", "64"},
			want: func(c *Config) { c.Workers = 64 },
		},
		{
			name: "excluded namespaces are split and trimmed",
			args: []string{"-exclude-namespaces", " kube-system, ,kube-public,"},
			want: func(c *Config) { c.ExcludeNamespaces = []string{"kube-system", "kube-public"} },
		},
		{
			name: "leader election namespace from POD_NAMESPACE",
			args: []string{"-leader-elect", "-kubeconfig=/k"},
			set:  map[string]string{"POD_NAMESPACE": "tracker"},
			want: func(c *Config) {
				c.LeaderElect, c.Kubeconfig, c.LeaderElectionNamespace, c.LedgerNamespace = true, "/k", "tracker", "tracker"
			},
		},
		{
			name: "leader election namespace flag wins over POD_NAMESPACE",
			args: []string{"-leader-election-namespace=flag-ns"},
			set:  map[string]string{"POD_NAMESPACE": "env-ns"},
			want: func(c *Config) { c.LeaderElectionNamespace, c.LedgerNamespace = "flag-ns", "env-ns" },
		},
		{
			name: "ledger namespace flag",
			args: []string{"-ledger-namespace=records"},
			set:  map[string]string{"POD_NAMESPACE": "env-ns"},
			want: func(c *Config) { c.LedgerNamespace, c.LeaderElectionNamespace = "records", "env-ns" },
		},
		{
			name: "no ledger",
			args: []string{"-ledger-namespace=-"},
			set:  map[string]string{"POD_NAMESPACE": "env-ns"},
			want: func(c *Config) { c.LedgerNamespace, c.LeaderElectionNamespace = "", "env-ns" },
		},
		{
			name: "leader election in the cluster without a namespace",
			args: []string{"-leader-elect"},
			want: func(c *Config) { c.LeaderElect = true },
		},
		{
			name: "record environment variables, trimmed",
			set: map[string]string{
				"ORG": " octo-org ", "BASE_URL": "https://ghes.example.com/api/v3", "DN_TEMPLATE": "{{namespace}}-{{containerName}}",
				"LOGICAL_ENVIRONMENT": "staging\n", "PHYSICAL_ENVIRONMENT": "eu-west-1", "CLUSTER": "\tmoda-2",
			},
			want: func(c *Config) {
				c.BaseURL, c.TemplateText = "https://ghes.example.com/api/v3", "{{namespace}}-{{containerName}}"
				c.LogicalEnvironment, c.PhysicalEnvironment, c.Cluster = "staging", "eu-west-1", "moda-2"
			},
		},
		{
			name: "environments of the maximum length",
			set: map[string]string{
				"LOGICAL_ENVIRONMENT":  strings.Repeat("é", record.MaxEnvironmentLength),
				"PHYSICAL_ENVIRONMENT": strings.Repeat("p", record.MaxEnvironmentLength),
				"CLUSTER":              strings.Repeat("c", record.MaxEnvironmentLength),
			},
			want: func(c *Config) {
				c.LogicalEnvironment = strings.Repeat("é", record.MaxEnvironmentLength)
				c.PhysicalEnvironment = strings.Repeat("p", record.MaxEnvironmentLength)
				c.Cluster = strings.Repeat("c", record.MaxEnvironmentLength)
			},
		},
		{
			name:  "API_TOKEN_FILE is read and trimmed",
			set:   map[string]string{"API_TOKEN_FILE": files.token},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.APIToken = secretToken },
		},
		{
			name:  "API_TOKEN_FILE without a newline",
			set:   map[string]string{"API_TOKEN_FILE": files.tokenNoNewline},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.APIToken = secretToken },
		},
		{
			name:  "API_TOKEN is trimmed",
			set:   map[string]string{"API_TOKEN": secretToken + "\n"},
			want:  func(c *Config) { c.APIToken = secretToken },
			unset: nil,
		},
		{
			name:  "GitHub App",
			set:   map[string]string{"GH_APP_ID": "12345", "GH_INSTALL_ID": "678", "GH_APP_PRIV_KEY": files.key},
			unset: []string{"API_TOKEN"},
			want: func(c *Config) {
				c.APIToken, c.AppID, c.InstallationID, c.AppPrivateKey = "", 12345, 678, files.key
			},
		},
		{
			name:  "dry run needs no org nor credentials",
			args:  []string{"-dry-run"},
			unset: []string{"ORG", "API_TOKEN"},
			want:  func(c *Config) { c.DryRun, c.Org, c.APIToken = true, "", "" },
		},
		{
			name:  "dry run ignores credentials and BASE_URL",
			args:  []string{"-dry-run"},
			set:   map[string]string{"API_TOKEN_FILE": files.missing, "BASE_URL": "not a url"},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.DryRun, c.APIToken, c.BaseURL = true, "", "not a url" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
			got, err := Parse(fs, tt.args, envOf(tt.set, tt.unset))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := defaults()
			tt.want(want)
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Template")); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			wantTmpl, err := record.ParseTemplate(want.TemplateText)
			if err != nil {
				t.Fatal(err)
			}
			vars := record.Vars{Namespace: "ns", DeploymentName: "dep", ContainerName: "c"}
			if got.Template == nil || got.Template.Render(vars) != wantTmpl.Render(vars) {
				t.Errorf("Template does not render as %q", want.TemplateText)
			}
		})
	}
}

// TestParseOtherPackagesFlags checks that flags other packages registered on fs (the logger's) are parsed.
func TestParseOtherPackagesFlags(t *testing.T) {
	fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
	devel := fs.Bool("zap-devel", false, "")
	if _, err := Parse(fs, []string{"-zap-devel", "-workers=3"}, envOf(nil, nil)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !*devel {
		t.Error("-zap-devel was not parsed")
	}
}

func TestParseErrors(t *testing.T) {
	files := writeFiles(t)
	tests := []struct {
		name  string
		args  []string
		set   map[string]string
		unset []string
		// wantNames are what each line of the error starts with (before ": "), in order: the flag or variable.
		wantNames []string
		// wantContains are substrings of the error, for flag syntax errors that the flag package words.
		wantContains []string
	}{
		{name: "LOGICAL_ENVIRONMENT missing", unset: []string{"LOGICAL_ENVIRONMENT"}, wantNames: []string{"LOGICAL_ENVIRONMENT"}},
		{name: "LOGICAL_ENVIRONMENT blank", set: map[string]string{"LOGICAL_ENVIRONMENT": "  "}, wantNames: []string{"LOGICAL_ENVIRONMENT"}},
		{name: "CLUSTER missing", unset: []string{"CLUSTER"}, wantNames: []string{"CLUSTER"}},
		{name: "ORG missing", unset: []string{"ORG"}, wantNames: []string{"ORG"}},
		{name: "credentials missing", unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN"}},
		{
			name:      "every required variable missing, reported at once",
			unset:     []string{"ORG", "LOGICAL_ENVIRONMENT", "CLUSTER", "API_TOKEN"},
			wantNames: []string{"LOGICAL_ENVIRONMENT", "CLUSTER", "ORG", "API_TOKEN"},
		},
		{
			name:      "dry run still needs the record environment",
			args:      []string{"-dry-run"},
			unset:     []string{"ORG", "LOGICAL_ENVIRONMENT", "CLUSTER", "API_TOKEN"},
			wantNames: []string{"LOGICAL_ENVIRONMENT", "CLUSTER"},
		},
		{
			name:      "environments too long",
			set:       map[string]string{"LOGICAL_ENVIRONMENT": strings.Repeat("é", 129), "PHYSICAL_ENVIRONMENT": strings.Repeat("p", 129), "CLUSTER": strings.Repeat("c", 129)},
			wantNames: []string{"LOGICAL_ENVIRONMENT", "PHYSICAL_ENVIRONMENT", "CLUSTER"},
		},
		{name: "DN_TEMPLATE unknown placeholder", set: map[string]string{"DN_TEMPLATE": "{{namespace}}/{{podName}}"}, wantNames: []string{"DN_TEMPLATE"}, wantContains: []string{"{{podName}}"}},
		{name: "BASE_URL without scheme", set: map[string]string{"BASE_URL": "api.github.com"}, wantNames: []string{"BASE_URL"}},
		{name: "BASE_URL with another scheme", set: map[string]string{"BASE_URL": "ftp://ghes.example.com"}, wantNames: []string{"BASE_URL"}},
		{name: "negative workers", args: []string{"-workers=-1"}, wantNames: []string{"-workers"}},
		{name: "zero workers", args: []string{"-workers=0"}, wantNames: []string{"-workers"}},
		{name: "too many workers", args: []string{"-workers=65"}, wantNames: []string{"-workers"}},
		{name: "workers not a number", args: []string{"-workers=two"}, wantNames: []string{"flags"}, wantContains: []string{"-workers"}},
		{name: "duration without unit", args: []string{"-unknown-artifact-ttl=5"}, wantNames: []string{"flags"}, wantContains: []string{"-unknown-artifact-ttl", `"5"`}},
		{name: "duration garbage", args: []string{"-shutdown-timeout", "soon"}, wantNames: []string{"flags"}, wantContains: []string{"-shutdown-timeout"}},
		{name: "negative duration", args: []string{"-unknown-artifact-ttl=-1s"}, wantNames: []string{"-unknown-artifact-ttl"}},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout=0s"}, wantNames: []string{"-shutdown-timeout"}},
		{name: "no rollout history", args: []string{"-rollout-history=0"}, wantNames: []string{"-rollout-history"}},
		{name: "rollout max age too short", args: []string{"-rollout-max-age=10m"}, wantNames: []string{"-rollout-max-age"}},
		{name: "webhook port zero", args: []string{"-webhook-port=0"}, wantNames: []string{"-webhook-port"}},
		{name: "webhook port too large", args: []string{"-webhook-port=65536"}, wantNames: []string{"-webhook-port"}},
		{name: "metrics port negative", args: []string{"-metrics-port=-1"}, wantNames: []string{"-metrics-port"}},
		{name: "port not a number", args: []string{"-metrics-port=http"}, wantNames: []string{"flags"}, wantContains: []string{"-metrics-port"}},
		{name: "both ports bad, in a stable order", args: []string{"-webhook-port=99999", "-metrics-port=-5"}, wantNames: []string{"-metrics-port", "-webhook-port"}},
		{name: "negative requests per minute", args: []string{"-github-requests-per-minute=-1"}, wantNames: []string{"-github-requests-per-minute"}},
		{name: "negative requests per hour", args: []string{"-github-requests-per-hour=-1"}, wantNames: []string{"-github-requests-per-hour"}},
		{name: "empty cert dir", args: []string{"-cert-dir="}, wantNames: []string{"-cert-dir"}},
		{name: "namespace and excluded namespaces", args: []string{"-namespace=a", "-exclude-namespaces=b"}, wantNames: []string{"-exclude-namespaces"}},
		{name: "invalid namespace", args: []string{"-namespace=Payments_NS"}, wantNames: []string{"-namespace/-exclude-namespaces"}},
		{name: "invalid excluded namespace", args: []string{"-exclude-namespaces=ok,not ok"}, wantNames: []string{"-namespace/-exclude-namespaces"}},
		{name: "leader election outside the cluster without namespace", args: []string{"-leader-elect", "-kubeconfig=/k"}, wantNames: []string{"-leader-election-namespace"}},
		{name: "unknown flag", args: []string{"-wokers=3"}, wantNames: []string{"flags"}, wantContains: []string{"-wokers"}},
		{name: "positional argument", args: []string{"run"}, wantNames: []string{"flags"}, wantContains: []string{`unexpected argument "run"`}},
		{
			name:      "API_TOKEN and API_TOKEN_FILE",
			set:       map[string]string{"API_TOKEN_FILE": files.token},
			wantNames: []string{"API_TOKEN, API_TOKEN_FILE"},
		},
		{
			name:      "API_TOKEN and a GitHub App",
			set:       map[string]string{"GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": files.key},
			wantNames: []string{"API_TOKEN, GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY"},
		},
		{
			name:      "API_TOKEN_FILE and part of a GitHub App",
			set:       map[string]string{"API_TOKEN_FILE": files.token, "GH_APP_PRIV_KEY": files.key},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"API_TOKEN_FILE, GH_APP_PRIV_KEY"},
		},
		{name: "SLACK_CHANNEL missing", set: map[string]string{"SLACK_TOKEN": "xoxb-1"}, wantNames: []string{"SLACK_CHANNEL"}},
		{name: "SLACK_TOKEN and SLACK_TOKEN_FILE", set: map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_TOKEN_FILE": files.token, "SLACK_CHANNEL": "#d"}, wantNames: []string{"SLACK_TOKEN, SLACK_TOKEN_FILE"}},
		{name: "SLACK_TOKEN_FILE missing", set: map[string]string{"SLACK_TOKEN_FILE": files.missing, "SLACK_CHANNEL": "#d"}, wantNames: []string{"SLACK_TOKEN_FILE"}},
		{name: "SLACK_TOKEN_FILE blank", set: map[string]string{"SLACK_TOKEN_FILE": files.blank, "SLACK_CHANNEL": "#d"}, wantNames: []string{"SLACK_TOKEN_FILE"}},
		{name: "SLACK_CHANNEL without a token", set: map[string]string{"SLACK_CHANNEL": "#d"}, wantNames: []string{"SLACK_TOKEN_FILE"}},
		{name: "SLACK_API_URL not a URL", set: map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#d", "SLACK_API_URL": "slack.com/api"}, wantNames: []string{"SLACK_API_URL"}},
		{name: "API_TOKEN_FILE missing", set: map[string]string{"API_TOKEN_FILE": files.missing}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{name: "API_TOKEN_FILE empty", set: map[string]string{"API_TOKEN_FILE": files.empty}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{name: "API_TOKEN_FILE blank", set: map[string]string{"API_TOKEN_FILE": files.blank}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{
			name:      "GitHub App ID only",
			set:       map[string]string{"GH_APP_ID": "12345"},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_INSTALL_ID", "GH_APP_PRIV_KEY"},
		},
		{
			name:      "GitHub App private key only",
			set:       map[string]string{"GH_APP_PRIV_KEY": files.key},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_ID", "GH_INSTALL_ID"},
		},
		{
			name:      "GitHub App invalid values",
			set:       map[string]string{"GH_APP_ID": "my-app", "GH_INSTALL_ID": "-3", "GH_APP_PRIV_KEY": files.missing},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_ID", "GH_INSTALL_ID", "GH_APP_PRIV_KEY"},
		},
		{
			name:      "GitHub App zero IDs",
			set:       map[string]string{"GH_APP_ID": "0", "GH_INSTALL_ID": "0", "GH_APP_PRIV_KEY": files.key},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_ID", "GH_INSTALL_ID"},
		},
		{
			name:      "flag and environment problems together",
			args:      []string{"-workers=0", "-webhook-port=0"},
			unset:     []string{"CLUSTER", "ORG"},
			set:       map[string]string{"DN_TEMPLATE": "{{x}}"},
			wantNames: []string{"DN_TEMPLATE", "-workers", "-webhook-port", "CLUSTER", "ORG"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
			got, err := Parse(fs, tt.args, envOf(tt.set, tt.unset))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			var names []string
			for _, line := range strings.Split(err.Error(), "\n") {
				name, _, _ := strings.Cut(line, ": ")
				names = append(names, name)
			}
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("Parse error:\n%v\nnames (-want +got):\n%s", err, diff)
			}
			for _, s := range tt.wantContains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Parse error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("Parse error contains the token: %q", err)
			}
		})
	}
}
