package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// buildWithMake builds the binary once with `make build`, the flags the Dockerfile uses too.
func buildWithMake(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deployment-tracker-build-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "deployment-tracker")
		cmd := exec.Command("make", "-s", "-C", "../..", "build", "OUT="+binary, "VERSION=v0.0.0-test")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %w\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

func TestBuildIsStaticAndVersioned(t *testing.T) {
	bin := buildWithMake(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("reading %s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("imported libraries %v (err %v), want none", libs, err)
	}
	out, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
		t.Errorf("-version printed %q (err %v), want the stamped version v0.0.0-test", out, err)
	}
	for _, want := range []string{"commit ", "built "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-version printed %q, want the %s", out, strings.TrimSpace(want))
		}
	}
}

// TestBadConfigurationExitsNamingTheSetting runs the binary with one bad setting at a time (and some together)
// on an otherwise valid configuration: configuration parsing reports each, naming the flag or variable, on
// stderr with exit status 2, before anything starts and without a stack trace.
func TestBadConfigurationExitsNamingTheSetting(t *testing.T) {
	bin := buildWithMake(t)
	dir := t.TempDir()
	certDir := writeCertDir(t)
	noKey, badPair := t.TempDir(), t.TempDir()
	crt, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(noKey, "tls.crt"), crt)
	writeFile(t, filepath.Join(badPair, "tls.crt"), crt)
	writeFile(t, filepath.Join(badPair, "tls.key"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	notPEM, emptyPEM, indentedToken, twoLineToken := filepath.Join(dir, "key.txt"), filepath.Join(dir, "empty.pem"),
		filepath.Join(dir, "token-indented"), filepath.Join(dir, "token-two-lines")
	writeFile(t, notPEM, []byte("not a key\n"))
	writeFile(t, emptyPEM, []byte("-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n"))
	writeFile(t, indentedToken, []byte("  ghp_abc\n"))
	writeFile(t, twoLineToken, []byte("ghp_abc\nghp_def\n"))
	app := []string{"API_TOKEN=", "GH_APP_ID=1", "GH_INSTALL_ID=2"}

	tests := []struct {
		name string
		// args replace the valid -cert-dir when they set one; env entries override the valid environment.
		args []string
		env  []string
		want []string
	}{
		{name: "missing environment", env: []string{"LOGICAL_ENVIRONMENT=", "CLUSTER=", "ORG=", "API_TOKEN="}, want: []string{"LOGICAL_ENVIRONMENT", "CLUSTER", "ORG", "API_TOKEN"}},
		{name: "bad flag value", args: []string{"-workers=0"}, want: []string{"-workers"}},
		{name: "unknown flag", args: []string{"-no-such-flag"}, want: []string{"no-such-flag"}},
		{name: "ORG with an underscore", env: []string{"ORG=octo_org"}, want: []string{"ORG"}},
		{name: "ORG with a leading hyphen", env: []string{"ORG=-octo"}, want: []string{"ORG"}},
		{name: "ORG too long", env: []string{"ORG=" + strings.Repeat("o", 40)}, want: []string{"ORG"}},
		{name: "App key missing", env: append(app, "GH_APP_PRIV_KEY="+filepath.Join(dir, "missing.pem")), want: []string{"GH_APP_PRIV_KEY"}},
		{name: "App key not PEM", env: append(app, "GH_APP_PRIV_KEY="+notPEM), want: []string{"GH_APP_PRIV_KEY"}},
		{name: "App key an empty PEM block", env: append(app, "GH_APP_PRIV_KEY="+emptyPEM), want: []string{"GH_APP_PRIV_KEY"}},
		{name: "token file indented", env: []string{"API_TOKEN=", "API_TOKEN_FILE=" + indentedToken}, want: []string{"API_TOKEN_FILE"}},
		{name: "token file of two lines", env: []string{"API_TOKEN=", "API_TOKEN_FILE=" + twoLineToken}, want: []string{"API_TOKEN_FILE"}},
		{name: "BASE_URL with a query", env: []string{"BASE_URL=https://ghes.example.com/api/v3?org=x"}, want: []string{"BASE_URL"}},
		{name: "BASE_URL with a fragment", env: []string{"BASE_URL=https://ghes.example.com/api/v3#x"}, want: []string{"BASE_URL"}},
		{name: "certificate directory missing", args: []string{"-cert-dir=" + filepath.Join(dir, "no-certs")}, want: []string{"-cert-dir", "tls.crt", "tls.key"}},
		{name: "certificate key missing", args: []string{"-cert-dir=" + noKey}, want: []string{"-cert-dir", "tls.key"}},
		{name: "certificate key invalid", args: []string{"-cert-dir=" + badPair}, want: []string{"-cert-dir"}},
		{name: "DN_TEMPLATE without the container", env: []string{"DN_TEMPLATE={{namespace}}/{{deploymentName}}"}, want: []string{"DN_TEMPLATE", "{{containerName}}"}},
		{name: "DN_TEMPLATE without the workload", env: []string{"DN_TEMPLATE={{namespace}}-{{containerName}}"}, want: []string{"DN_TEMPLATE", "{{deploymentName}}"}},
		{name: "metrics bind address", args: []string{"-metrics-bind-address=9090"}, want: []string{"-metrics-bind-address"}},
		{name: "metrics port", args: []string{"-metrics-port=70000"}, want: []string{"-metrics-port"}},
		{name: "memory limit ratio above 1", env: []string{"AUTOMEMLIMIT=1.5"}, want: []string{"AUTOMEMLIMIT"}},
		{name: "memory limit ratio not a number", env: []string{"AUTOMEMLIMIT=90%"}, want: []string{"AUTOMEMLIMIT"}},
		{
			name: "every bad setting at once",
			args: []string{"-cert-dir=" + noKey, "-workers=100"},
			env:  []string{"ORG=octo org", "BASE_URL=https://x.example.com/?a", "DN_TEMPLATE={{kind}}", "API_TOKEN=", "API_TOKEN_FILE=" + indentedToken},
			want: []string{"-cert-dir", "-workers", "ORG", "BASE_URL", "DN_TEMPLATE", "API_TOKEN_FILE"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-cert-dir=") }) {
				args = append([]string{"-cert-dir=" + certDir}, args...)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append([]string{
				"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
				"LOGICAL_ENVIRONMENT=prod", "CLUSTER=c1", "ORG=octo-org", "API_TOKEN=ghp_t",
			}, tc.env...) // later entries win
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not name %s:\n%s", w, stderr.String())
				}
			}
			for _, trace := range []string{"goroutine ", "stacktrace", ".go:"} {
				if strings.Contains(stderr.String(), trace) {
					t.Errorf("stderr has a stack trace (%q):\n%s", trace, stderr.String())
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout is not empty:\n%s", stdout.String())
			}
		})
	}
}

// TestHelpListsFlagsAndEnvironment checks that -h prints the usage to stdout and exits 0, without any
// configuration, listing the flags and the environment variables with their defaults.
func TestHelpListsFlagsAndEnvironment(t *testing.T) {
	bin := buildWithMake(t)
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			cmd := exec.Command(bin, arg)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v; stderr:\n%s", arg, err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr is not empty:\n%s", stderr.String())
			}
			for _, want := range []string{
				"-metrics-bind-address", `(default ":9090")`, "-metrics-port", "-cert-dir", "-workers", "(1 to 64)",
				"-zap-log-level", "-version", "Environment variables:",
				"ORG", "BASE_URL", `(default "https://api.github.com")`, "DN_TEMPLATE", `(default "{{namespace}}/{{deploymentName}}/{{containerName}}")`,
				"LOGICAL_ENVIRONMENT", "PHYSICAL_ENVIRONMENT", "CLUSTER", "API_TOKEN", "API_TOKEN_FILE",
				"GH_APP_ID", "GH_INSTALL_ID", "GH_APP_PRIV_KEY", "POD_NAMESPACE",
			} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("usage does not contain %s:\n%s", want, stdout.String())
				}
			}
		})
	}
}
