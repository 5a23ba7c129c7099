package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"

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
		MetricsBindAddress: ":9090",
		WebhookPort:        9443,
		CertDir:            "/tmp/k8s-webhook-server/serving-certs",
		HealthProbeAddr:    ":8081",
		PprofBindAddress:   "0",
		LeaderElectionID:   "deployment-tracker",
		Workers:            2,
		RequestsPerMinute:  80,
		RequestsPerHour:    500,
		UnknownArtifactTTL: time.Hour,
		ShutdownTimeout:    20 * time.Second,
		RolloutHistory:     10,
		RolloutMaxAge:      30 * 24 * time.Hour,
		GitHubDeployments:  true,
		DeliveryMetrics:    true,
		Org:                "octo-org",
		BaseURL:            "https://api.github.com",
		TemplateText:       record.DefaultTemplate,
		LogicalEnvironment: "production",
		Cluster:            "moda-1",
		APIToken:           secretToken,

		FluxDiscoveryInterval: 3 * time.Minute,
		LedgerRetention:       7 * 24 * time.Hour,
	}
}

// testFiles are the files the tests point API_TOKEN_FILE and GH_APP_PRIV_KEY at.
type testFiles struct {
	token, tokenCRLF, tokenNoNewline, tokenIndented, tokenTwoLines, empty, blank string
	key, keyPKCS8, keyEmptyBlock, keyNotPEM, keyEC, missing                      string
}

func writeFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	f := testFiles{
		token:          filepath.Join(dir, "token"),
		tokenCRLF:      filepath.Join(dir, "token-crlf"),
		tokenNoNewline: filepath.Join(dir, "token-no-newline"),
		tokenIndented:  filepath.Join(dir, "token-indented"),
		tokenTwoLines:  filepath.Join(dir, "token-two-lines"),
		empty:          filepath.Join(dir, "empty"),
		blank:          filepath.Join(dir, "blank"),
		key:            filepath.Join(dir, "key.pem"),
		keyPKCS8:       filepath.Join(dir, "key-pkcs8.pem"),
		keyEmptyBlock:  filepath.Join(dir, "key-empty-block.pem"),
		keyNotPEM:      filepath.Join(dir, "key-not-pem"),
		keyEC:          filepath.Join(dir, "key-ec.pem"),
		missing:        filepath.Join(dir, "missing"),
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		f.token:          secretToken + "\n", // as echo, an editor or kubectl create secret --from-file leave it
		f.tokenCRLF:      secretToken + "\r\n",
		f.tokenNoNewline: secretToken,
		f.tokenIndented:  "  " + secretToken + "\n",
		f.tokenTwoLines:  secretToken + "\n" + secretToken + "\n",
		f.empty:          "",
		f.blank:          " \n\t\n",
		f.key:            string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})),
		f.keyPKCS8:       string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		f.keyEmptyBlock:  "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n",
		f.keyNotPEM:      "not a key\n",
		f.keyEC:          string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})),
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
				"-health-probe-bind-address=:9000", "-pprof-bind-address=127.0.0.1:6060", "-leader-elect", "-leader-election-namespace=tracker",
				"-leader-election-id=dt", "-github-requests-per-minute=0", "-github-requests-per-hour=0",
				"-unknown-artifact-ttl=0s", "-shutdown-timeout=1m30s", "-rollout-history=3", "-rollout-max-age=168h",
				"-github-deployments=false", "-delivery-metrics=false",
				"-flux-discovery-interval=0s", "-ledger-retention=0s",
			},
			want: func(c *Config) {
				c.Kubeconfig, c.Namespace, c.Workers = "/home/me/.kube/config", "payments", 8
				c.MetricsBindAddress, c.WebhookPort, c.WebhookHost, c.CertDir = "0", 8443, "127.0.0.1", "/certs"
				c.HealthProbeAddr, c.LeaderElect, c.LeaderElectionNamespace, c.LeaderElectionID = ":9000", true, "tracker", "dt"
				c.PprofBindAddress = "127.0.0.1:6060"
				c.RequestsPerMinute, c.RequestsPerHour, c.UnknownArtifactTTL, c.ShutdownTimeout = 0, 0, 0, 90*time.Second
				c.RolloutHistory, c.RolloutMaxAge = 3, 7*24*time.Hour
				c.GitHubDeployments = false
				c.DeliveryMetrics = false
				c.FluxDiscoveryInterval = 0
				c.LedgerRetention = 0
			},
		},
		{
			name: "ledger retention of a second (tests, a ledger that must stay small)",
			args: []string{"-ledger-retention=1s"},
			want: func(c *Config) { c.LedgerRetention = time.Second },
		},
		{
			name: "metrics bind address",
			args: []string{"-metrics-bind-address=127.0.0.1:8080"},
			want: func(c *Config) { c.MetricsBindAddress = "127.0.0.1:8080" },
		},
		{
			name: "metrics server off through the bind address",
			args: []string{"-metrics-bind-address=0"},
			want: func(c *Config) { c.MetricsBindAddress = "0" },
		},
		{
			name: "metrics port of the reference implementation",
			args: []string{"-metrics-port=8080"},
			want: func(c *Config) { c.MetricsBindAddress = ":8080" },
		},
		{
			name: "metrics port set explicitly wins over the bind address",
			args: []string{"-metrics-port=9091", "-metrics-bind-address=127.0.0.1:8080"},
			want: func(c *Config) { c.MetricsBindAddress = ":9091" },
		},
		{
			name: "metrics port 9090 set explicitly",
			args: []string{"-metrics-bind-address=127.0.0.1:8080", "-metrics-port", "9090"},
			want: func(c *Config) { c.MetricsBindAddress = ":9090" },
		},
		{
			name: "health probes off",
			args: []string{"-health-probe-bind-address=0"},
			want: func(c *Config) { c.HealthProbeAddr = "0" },
		},
		{
			name: "Slack from a token file",
			set:  map[string]string{"SLACK_TOKEN_FILE": files.token, "SLACK_CHANNEL": " #deploys ", "SLACK_API_URL": "http://127.0.0.1:1/api/"},
			want: func(c *Config) {
				c.Slack = SlackConfig{Token: secretToken, TokenFile: files.token, Channel: "#deploys", APIURL: "http://127.0.0.1:1/api/"}
			},
		},
		{
			name: "Slack from a token",
			set:  map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "C0123"},
			want: func(c *Config) { c.Slack = SlackConfig{Token: "xoxb-1", Channel: "C0123"} },
		},
		{
			name: "Slack team label",
			set:  map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "C0123", "SLACK_TEAM_LABEL": " example.com/team "},
			want: func(c *Config) {
				c.Slack = SlackConfig{Token: "xoxb-1", Channel: "C0123", TeamLabel: "example.com/team"}
			},
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
				"ORG": " octo-org ", "BASE_URL": "https://ghes.example.com/api/v3", "DN_TEMPLATE": "{{namespace}}-{{deploymentName}}-{{containerName}}",
				"LOGICAL_ENVIRONMENT": "staging\n", "PHYSICAL_ENVIRONMENT": "eu-west-1", "CLUSTER": "\tmoda-2",
			},
			want: func(c *Config) {
				c.BaseURL, c.TemplateText = "https://ghes.example.com/api/v3", "{{namespace}}-{{deploymentName}}-{{containerName}}"
				c.LogicalEnvironment, c.PhysicalEnvironment, c.Cluster = "staging", "eu-west-1", "moda-2"
			},
		},
		{
			name: "DN_TEMPLATE with every placeholder",
			set:  map[string]string{"DN_TEMPLATE": "{{kind}}:{{namespace}}/{{deploymentName}}/{{containerName}}"},
			want: func(c *Config) { c.TemplateText = "{{kind}}:{{namespace}}/{{deploymentName}}/{{containerName}}" },
		},
		{
			name: "DN_TEMPLATE without the namespace when one namespace is tracked",
			args: []string{"-namespace=payments"},
			set:  map[string]string{"DN_TEMPLATE": "payments-{{deploymentName}}-{{containerName}}"},
			want: func(c *Config) {
				c.Namespace, c.TemplateText = "payments", "payments-{{deploymentName}}-{{containerName}}"
			},
		},
		{
			name: "organization names GitHub accepts",
			set:  map[string]string{"ORG": "Octo-0rg-2"},
			want: func(c *Config) { c.Org = "Octo-0rg-2" },
		},
		{
			name: "organization name of the maximum length",
			set:  map[string]string{"ORG": strings.Repeat("o", 39)},
			want: func(c *Config) { c.Org = strings.Repeat("o", 39) },
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
			name:  "API_TOKEN_FILE: the trailing newline is removed",
			set:   map[string]string{"API_TOKEN_FILE": files.token},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.APIToken, c.APITokenFile = secretToken, files.token },
		},
		{
			name:  "API_TOKEN_FILE: a trailing CRLF is removed",
			set:   map[string]string{"API_TOKEN_FILE": files.tokenCRLF},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.APIToken, c.APITokenFile = secretToken, files.tokenCRLF },
		},
		{
			name:  "API_TOKEN_FILE without a newline",
			set:   map[string]string{"API_TOKEN_FILE": files.tokenNoNewline},
			unset: []string{"API_TOKEN"},
			want:  func(c *Config) { c.APIToken, c.APITokenFile = secretToken, files.tokenNoNewline },
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
			name:  "GitHub App with a PKCS #8 key",
			set:   map[string]string{"GH_APP_ID": "12345", "GH_INSTALL_ID": "678", "GH_APP_PRIV_KEY": files.keyPKCS8},
			unset: []string{"API_TOKEN"},
			want: func(c *Config) {
				c.APIToken, c.AppID, c.InstallationID, c.AppPrivateKey = "", 12345, 678, files.keyPKCS8
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
		{name: "DN_TEMPLATE without the container", set: map[string]string{"DN_TEMPLATE": "{{namespace}}/{{deploymentName}}"}, wantNames: []string{"DN_TEMPLATE"}, wantContains: []string{"{{containerName}}"}},
		{name: "DN_TEMPLATE without the workload", set: map[string]string{"DN_TEMPLATE": "{{namespace}}/{{containerName}}"}, wantNames: []string{"DN_TEMPLATE"}, wantContains: []string{"{{deploymentName}}"}},
		{name: "DN_TEMPLATE without the namespace", set: map[string]string{"DN_TEMPLATE": "{{deploymentName}}/{{containerName}}"}, wantNames: []string{"DN_TEMPLATE"}, wantContains: []string{"{{namespace}}", "-namespace"}},
		{name: "DN_TEMPLATE without the namespace, other namespaces excluded", args: []string{"-exclude-namespaces=kube-system"}, set: map[string]string{"DN_TEMPLATE": "{{deploymentName}}/{{containerName}}"}, wantNames: []string{"DN_TEMPLATE"}},
		{name: "DN_TEMPLATE with the kind only", set: map[string]string{"DN_TEMPLATE": "{{kind}}"}, wantNames: []string{"DN_TEMPLATE"}, wantContains: []string{"{{namespace}}, {{deploymentName}}, {{containerName}}"}},
		{name: "DN_TEMPLATE without placeholders", set: map[string]string{"DN_TEMPLATE": "app"}, wantNames: []string{"DN_TEMPLATE"}},
		{name: "BASE_URL without scheme", set: map[string]string{"BASE_URL": "api.github.com"}, wantNames: []string{"BASE_URL"}},
		{name: "BASE_URL with another scheme", set: map[string]string{"BASE_URL": "ftp://ghes.example.com"}, wantNames: []string{"BASE_URL"}},
		{name: "BASE_URL with a query", set: map[string]string{"BASE_URL": "https://ghes.example.com/api/v3?x=1"}, wantNames: []string{"BASE_URL"}, wantContains: []string{"query"}},
		{name: "BASE_URL with an empty query", set: map[string]string{"BASE_URL": "https://ghes.example.com/api/v3?"}, wantNames: []string{"BASE_URL"}},
		{name: "BASE_URL with a fragment", set: map[string]string{"BASE_URL": "https://ghes.example.com/api/v3#top"}, wantNames: []string{"BASE_URL"}, wantContains: []string{"fragment"}},
		{name: "BASE_URL with an empty fragment", set: map[string]string{"BASE_URL": "https://ghes.example.com/#"}, wantNames: []string{"BASE_URL"}},
		{name: "BASE_URL with credentials", set: map[string]string{"BASE_URL": "https://me:" + secretToken + "@ghes.example.com/api/v3"}, wantNames: []string{"BASE_URL"}},
		{name: "ORG with a leading hyphen", set: map[string]string{"ORG": "-octo"}, wantNames: []string{"ORG"}},
		{name: "ORG with a trailing hyphen", set: map[string]string{"ORG": "octo-"}, wantNames: []string{"ORG"}},
		{name: "ORG with a double hyphen", set: map[string]string{"ORG": "octo--org"}, wantNames: []string{"ORG"}},
		{name: "ORG with an underscore", set: map[string]string{"ORG": "octo_org"}, wantNames: []string{"ORG"}},
		{name: "ORG with a slash", set: map[string]string{"ORG": "octo/org"}, wantNames: []string{"ORG"}},
		{name: "ORG too long", set: map[string]string{"ORG": strings.Repeat("o", 40)}, wantNames: []string{"ORG"}},
		{name: "ORG bad in dry run too", args: []string{"-dry-run"}, set: map[string]string{"ORG": "octo org"}, wantNames: []string{"ORG"}},
		{name: "API_TOKEN with inner whitespace", set: map[string]string{"API_TOKEN": "ghp_abc def"}, wantNames: []string{"API_TOKEN"}},
		{name: "negative workers", args: []string{"-workers=-1"}, wantNames: []string{"-workers"}},
		{name: "zero workers", args: []string{"-workers=0"}, wantNames: []string{"-workers"}},
		{name: "too many workers", args: []string{"-workers=65"}, wantNames: []string{"-workers"}},
		{name: "workers not a number", args: []string{"-workers=two"}, wantNames: []string{"flags"}, wantContains: []string{"-workers"}},
		{name: "duration without unit", args: []string{"-unknown-artifact-ttl=5"}, wantNames: []string{"flags"}, wantContains: []string{"-unknown-artifact-ttl", `"5"`}},
		{name: "duration garbage", args: []string{"-shutdown-timeout", "soon"}, wantNames: []string{"flags"}, wantContains: []string{"-shutdown-timeout"}},
		{name: "negative duration", args: []string{"-unknown-artifact-ttl=-1s"}, wantNames: []string{"-unknown-artifact-ttl"}},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout=0s"}, wantNames: []string{"-shutdown-timeout"}},
		{name: "shutdown timeout below a second", args: []string{"-shutdown-timeout=999ms"}, wantNames: []string{"-shutdown-timeout"}},
		{name: "no rollout history", args: []string{"-rollout-history=0"}, wantNames: []string{"-rollout-history"}},
		{name: "rollout max age too short", args: []string{"-rollout-max-age=10m"}, wantNames: []string{"-rollout-max-age"}},
		{name: "negative Flux discovery interval", args: []string{"-flux-discovery-interval=-1m"}, wantNames: []string{"-flux-discovery-interval"}},
		{name: "negative ledger retention", args: []string{"-ledger-retention=-24h"}, wantNames: []string{"-ledger-retention"}, wantContains: []string{"must not be negative"}},
		{name: "ledger retention without unit", args: []string{"-ledger-retention=7"}, wantNames: []string{"flags"}, wantContains: []string{"-ledger-retention"}},
		{name: "webhook port zero", args: []string{"-webhook-port=0"}, wantNames: []string{"-webhook-port"}},
		{name: "webhook port too large", args: []string{"-webhook-port=65536"}, wantNames: []string{"-webhook-port"}},
		{name: "metrics port negative", args: []string{"-metrics-port=-1"}, wantNames: []string{"-metrics-port"}},
		{name: "metrics port too large", args: []string{"-metrics-port=65536"}, wantNames: []string{"-metrics-port"}},
		{name: "metrics bind address without a port", args: []string{"-metrics-bind-address=localhost"}, wantNames: []string{"-metrics-bind-address"}},
		{name: "metrics bind address a bare port", args: []string{"-metrics-bind-address=9090"}, wantNames: []string{"-metrics-bind-address"}},
		{name: "metrics bind address port too large", args: []string{"-metrics-bind-address=:99999"}, wantNames: []string{"-metrics-bind-address"}},
		{name: "metrics bind address port not a number", args: []string{"-metrics-bind-address=:http"}, wantNames: []string{"-metrics-bind-address"}},
		{name: "health probe bind address without a port", args: []string{"-health-probe-bind-address=8081"}, wantNames: []string{"-health-probe-bind-address"}},
		{name: "pprof bind address without a port", args: []string{"-pprof-bind-address=localhost"}, wantNames: []string{"-pprof-bind-address"}},
		{name: "port not a number", args: []string{"-metrics-port=http"}, wantNames: []string{"flags"}, wantContains: []string{"-metrics-port"}},
		{name: "both ports bad, in a stable order", args: []string{"-webhook-port=99999", "-metrics-port=-5"}, wantNames: []string{"-metrics-port", "-webhook-port"}},
		{name: "negative requests per minute", args: []string{"-github-requests-per-minute=-1"}, wantNames: []string{"-github-requests-per-minute"}},
		{name: "negative requests per hour", args: []string{"-github-requests-per-hour=-1"}, wantNames: []string{"-github-requests-per-hour"}},
		{name: "empty cert dir", args: []string{"-cert-dir="}, wantNames: []string{"-cert-dir"}},
		{name: "namespace and excluded namespaces", args: []string{"-namespace=a", "-exclude-namespaces=b"}, wantNames: []string{"-exclude-namespaces"}},
		{name: "invalid namespace", args: []string{"-namespace=Payments_NS"}, wantNames: []string{"-namespace/-exclude-namespaces"}},
		{name: "invalid excluded namespace", args: []string{"-exclude-namespaces=ok,not ok"}, wantNames: []string{"-namespace/-exclude-namespaces"}},
		{name: "invalid namespace selector", args: []string{"-namespace-selector=shard in (a"}, wantNames: []string{"-namespace-selector"}, wantContains: []string{"not a label selector"}},
		{name: "invalid workload selector", args: []string{"-workload-selector==web"}, wantNames: []string{"-workload-selector"}},
		{name: "both selectors invalid", args: []string{"-namespace-selector=!", "-workload-selector=a b"}, wantNames: []string{"-namespace-selector", "-workload-selector"}},
		{name: "namespace selector with -namespace", args: []string{"-namespace=shop", "-namespace-selector=shard=a"}, wantNames: []string{"-namespace-selector"}, wantContains: []string{"-namespace"}},
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
		{name: "SLACK_TEAM_LABEL not a label key", set: map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#d", "SLACK_TEAM_LABEL": "team name"}, wantNames: []string{"SLACK_TEAM_LABEL"}},
		{name: "SLACK_TEAM_LABEL with an empty prefix", set: map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#d", "SLACK_TEAM_LABEL": "/team"}, wantNames: []string{"SLACK_TEAM_LABEL"}},
		{name: "SLACK_TEAM_LABEL without a token", set: map[string]string{"SLACK_TEAM_LABEL": "team"}, wantNames: []string{"SLACK_TOKEN_FILE"}},
		{name: "SLACK_API_URL not a URL", set: map[string]string{"SLACK_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#d", "SLACK_API_URL": "slack.com/api"}, wantNames: []string{"SLACK_API_URL"}},
		{name: "API_TOKEN_FILE missing", set: map[string]string{"API_TOKEN_FILE": files.missing}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{name: "API_TOKEN_FILE empty", set: map[string]string{"API_TOKEN_FILE": files.empty}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{name: "API_TOKEN_FILE blank", set: map[string]string{"API_TOKEN_FILE": files.blank}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}},
		{name: "API_TOKEN_FILE indented", set: map[string]string{"API_TOKEN_FILE": files.tokenIndented}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}, wantContains: []string{"whitespace"}},
		{name: "API_TOKEN_FILE of two lines", set: map[string]string{"API_TOKEN_FILE": files.tokenTwoLines}, unset: []string{"API_TOKEN"}, wantNames: []string{"API_TOKEN_FILE"}, wantContains: []string{"whitespace"}},
		{
			name:      "GitHub App key not PEM",
			set:       map[string]string{"GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": files.keyNotPEM},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_PRIV_KEY"}, wantContains: []string{files.keyNotPEM, "PEM"},
		},
		{
			name:      "GitHub App key an empty PEM block",
			set:       map[string]string{"GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": files.keyEmptyBlock},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_PRIV_KEY"},
		},
		{
			name:      "GitHub App key not RSA",
			set:       map[string]string{"GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": files.keyEC},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_PRIV_KEY"},
		},
		{
			name:      "GitHub App key a directory",
			set:       map[string]string{"GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": filepath.Dir(files.key)},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"GH_APP_PRIV_KEY"},
		},
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
		{
			name:      "every new check at once",
			args:      []string{"-metrics-bind-address=nowhere"},
			set:       map[string]string{"DN_TEMPLATE": "{{namespace}}", "ORG": "octo_org", "BASE_URL": "https://ghes.example.com?x", "API_TOKEN_FILE": files.tokenIndented},
			unset:     []string{"API_TOKEN"},
			wantNames: []string{"DN_TEMPLATE", "-metrics-bind-address", "ORG", "BASE_URL", "API_TOKEN_FILE"},
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

// writeCertDir writes a self-signed serving certificate for 127.0.0.1 as tls.crt and tls.key into a new
// directory, as cert-manager's Secret is mounted.
func writeCertDir(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "deployment-tracker"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	good := writeCertDir(t)
	other := writeCertDir(t)
	onlyCrt, onlyKey, mismatched, garbage := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	crt, err := os.ReadFile(filepath.Join(good, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(other, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(onlyCrt, "tls.crt"), crt)
	writeFile(t, filepath.Join(onlyKey, "tls.key"), otherKey)
	writeFile(t, filepath.Join(mismatched, "tls.crt"), crt)
	writeFile(t, filepath.Join(mismatched, "tls.key"), otherKey)
	writeFile(t, filepath.Join(garbage, "tls.crt"), []byte("not a certificate"))
	writeFile(t, filepath.Join(garbage, "tls.key"), []byte("not a key"))

	tests := []struct {
		name  string
		args  []string
		unset []string
		// wantNames are the names the error lines start with; none: Load succeeds.
		wantNames    []string
		wantContains []string
	}{
		{name: "certificate and key", args: []string{"-cert-dir=" + good}},
		{name: "no such directory", args: []string{"-cert-dir=" + filepath.Join(good, "missing")}, wantNames: []string{"-cert-dir", "-cert-dir"}, wantContains: []string{"tls.crt", "tls.key"}},
		{name: "the default directory, not mounted", args: []string{"-cert-dir=" + t.TempDir()}, wantNames: []string{"-cert-dir", "-cert-dir"}},
		{name: "key missing", args: []string{"-cert-dir=" + onlyCrt}, wantNames: []string{"-cert-dir"}, wantContains: []string{"tls.key"}},
		{name: "certificate missing", args: []string{"-cert-dir=" + onlyKey}, wantNames: []string{"-cert-dir"}, wantContains: []string{"tls.crt"}},
		{name: "key of another certificate", args: []string{"-cert-dir=" + mismatched}, wantNames: []string{"-cert-dir"}, wantContains: []string{"key pair"}},
		{name: "not PEM", args: []string{"-cert-dir=" + garbage}, wantNames: []string{"-cert-dir"}},
		{name: "empty cert dir is reported once", args: []string{"-cert-dir="}, wantNames: []string{"-cert-dir"}},
		{
			name:      "with the other problems, at once",
			args:      []string{"-cert-dir=" + onlyCrt, "-workers=0"},
			unset:     []string{"CLUSTER"},
			wantNames: []string{"-workers", "CLUSTER", "-cert-dir"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
			got, err := Load(fs, tt.args, envOf(nil, tt.unset))
			if len(tt.wantNames) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got.CertDir != good {
					t.Errorf("CertDir = %q, want %q", got.CertDir, good)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load = %+v, want an error", got)
			}
			var names []string
			for _, line := range strings.Split(err.Error(), "\n") {
				name, _, _ := strings.Cut(line, ": ")
				names = append(names, name)
			}
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("Load error:\n%v\nnames (-want +got):\n%s", err, diff)
			}
			for _, s := range tt.wantContains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Load error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestEnvVarsAreWhatParseReads keeps -h complete: every variable Parse looks up is in EnvVars, and only those.
func TestEnvVarsAreWhatParseReads(t *testing.T) {
	files := writeFiles(t)
	read := map[string]bool{}
	for _, set := range []map[string]string{
		nil,
		{"API_TOKEN": "", "GH_APP_ID": "1", "GH_INSTALL_ID": "2", "GH_APP_PRIV_KEY": files.key},
	} {
		base := envOf(set, nil)
		env := func(k string) (string, bool) { read[k] = true; return base(k) }
		if _, err := Parse(flag.NewFlagSet("deployment-tracker", flag.ContinueOnError), nil, env); err != nil {
			t.Fatalf("Parse: %v", err)
		}
	}
	var got, want []string
	for k := range read {
		got = append(got, k)
	}
	for _, v := range EnvVars {
		want = append(want, v.Name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EnvVars (-listed +read):\n%s", diff)
	}
}

func TestUsage(t *testing.T) {
	fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
	if _, err := Parse(fs, []string{"-h"}, envOf(nil, nil)); err == nil {
		t.Fatal("Parse -h: no error")
	}
	var b bytes.Buffer
	Usage(&b, fs)
	out := b.String()
	var want []string
	fs.VisitAll(func(f *flag.Flag) { want = append(want, "-"+f.Name) })
	for _, v := range EnvVars {
		want = append(want, "  "+v.Name+"\n")
	}
	want = append(want, `(default ":9090")`, `(default "https://api.github.com")`, "(1 to 64)", `(default "`+record.DefaultTemplate+`")`)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("usage does not contain %q:\n%s", w, out)
		}
	}
}

// TestDrainTimeout checks that the drain ends strictly within the manager's grace period (-shutdown-timeout),
// leaving a quarter of it, at most 5s, for the rest of the shutdown.
func TestDrainTimeout(t *testing.T) {
	tests := []struct {
		shutdown, want time.Duration
	}{
		{shutdown: time.Second, want: 750 * time.Millisecond},
		{shutdown: 2 * time.Second, want: 1500 * time.Millisecond},
		{shutdown: 20 * time.Second, want: 15 * time.Second},
		{shutdown: time.Minute, want: 55 * time.Second},
		{shutdown: time.Hour, want: time.Hour - 5*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.shutdown.String(), func(t *testing.T) {
			c := Config{ShutdownTimeout: tt.shutdown}
			got := c.DrainTimeout()
			if got != tt.want {
				t.Errorf("DrainTimeout() = %s, want %s", got, tt.want)
			}
			if got <= 0 || got >= tt.shutdown {
				t.Errorf("DrainTimeout() = %s, want strictly between 0 and the grace period %s", got, tt.shutdown)
			}
		})
	}
}

func TestParseSelectors(t *testing.T) {
	tests := []struct {
		name               string
		args               []string
		wantNamespace      string // the selector's String(); "" for nil
		wantWorkload       string
		wantLabelKeys      []string
		matchNamespace     map[string]string
		wantNamespaceMatch bool
	}{
		{name: "none: nil selectors", args: nil},
		{name: "empty flags: nil selectors", args: []string{"-namespace-selector=", "-workload-selector="}},
		{name: "namespace selector", args: []string{"-namespace-selector=shard=a,env!=dev"}, wantNamespace: "env!=dev,shard=a",
			matchNamespace: map[string]string{"shard": "a"}, wantNamespaceMatch: true},
		{name: "set-based workload selector", args: []string{"-workload-selector=tier in (web,api),!legacy"}, wantWorkload: "!legacy,tier in (api,web)",
			wantLabelKeys: []string{"legacy", "tier"}},
		{name: "workload selector with -namespace", args: []string{"-namespace=shop", "-workload-selector=shard=b"}, wantWorkload: "shard=b",
			wantLabelKeys: []string{"shard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(flag.NewFlagSet("test", flag.ContinueOnError), tt.args, envOf(nil, nil))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			str := func(s interface{ String() string }, isNil bool) string {
				if isNil {
					return ""
				}
				return s.String()
			}
			if got := str(c.NamespaceSelector, c.NamespaceSelector == nil); got != tt.wantNamespace {
				t.Errorf("NamespaceSelector = %q, want %q", got, tt.wantNamespace)
			}
			if got := str(c.WorkloadSelector, c.WorkloadSelector == nil); got != tt.wantWorkload {
				t.Errorf("WorkloadSelector = %q, want %q", got, tt.wantWorkload)
			}
			if diff := cmp.Diff(tt.wantLabelKeys, c.SelectorLabelKeys(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("SelectorLabelKeys() mismatch (-want +got):\n%s", diff)
			}
			if tt.matchNamespace != nil {
				if got := c.NamespaceSelector.Matches(labels.Set(tt.matchNamespace)); got != tt.wantNamespaceMatch {
					t.Errorf("NamespaceSelector.Matches(%v) = %t, want %t", tt.matchNamespace, got, tt.wantNamespaceMatch)
				}
			}
		})
	}
}
