package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
}

func TestBadConfigurationExitsNamingTheSetting(t *testing.T) {
	bin := buildWithMake(t)
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"missing environment", nil, nil, []string{"LOGICAL_ENVIRONMENT", "CLUSTER"}},
		{"bad flag value", []string{"-workers=0"}, []string{"LOGICAL_ENVIRONMENT=prod", "CLUSTER=c1", "ORG=o", "API_TOKEN=t"}, []string{"-workers"}},
		{"unknown flag", []string{"-no-such-flag"}, nil, []string{"no-such-flag"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not name %s:\n%s", w, out)
				}
			}
		})
	}
}
