package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrBinariesMissing is wrapped by the error Start returns when a control plane binary is not there: the test
// should skip (see SkipOrFail) rather than fail on a machine that has not run hack/k8s-bin.sh.
var ErrBinariesMissing = errors.New("control plane binaries missing")

// EnvAssets is the environment variable (shared with controller-runtime's envtest and setup-envtest) that
// names the binaries directory, overriding Options.BinDir and the default.
const EnvAssets = "KUBEBUILDER_ASSETS"

// binaries are the executables Start needs, all from one directory.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// versionsFile pins the control plane versions; the default binaries directory is derived from it.
const versionsFile = "hack/versions.env"

// binDir resolves the binaries directory: KUBEBUILDER_ASSETS, then explicit, then
// <repo root>/bin/k8s/<KUBERNETES_VERSION>. envtest gives KUBEBUILDER_ASSETS the same precedence.
func binDir(explicit string) (string, error) {
	if dir := os.Getenv(EnvAssets); dir != "" {
		return dir, nil
	}
	if explicit != "" {
		return explicit, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	vars, err := readEnvFile(filepath.Join(root, versionsFile))
	if err != nil {
		return "", err
	}
	v := vars["KUBERNETES_VERSION"]
	if v == "" {
		return "", fmt.Errorf("read %s: KUBERNETES_VERSION is not set", filepath.Join(root, versionsFile))
	}
	return filepath.Join(root, "bin", "k8s", v), nil
}

// checkBinaries returns an error wrapping ErrBinariesMissing that lists every binary not executable in dir.
func checkBinaries(dir string) error {
	var missing []string
	for _, b := range binaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in %s (build them with hack/k8s-bin.sh, or point %s at a directory holding %s)",
			ErrBinariesMissing, strings.Join(missing, ", "), dir, EnvAssets, strings.Join(binaries, ", "))
	}
	return nil
}

// repoRoot finds the repository root: the nearest directory above the working directory (a test's package
// directory) holding hack/versions.env, else the one above this source file.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, versionsFile)); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%w: no %s above %s; set %s or Options.BinDir",
		ErrBinariesMissing, versionsFile, strings.Join(starts, " or "), EnvAssets)
}

// readEnvFile reads KEY=VALUE lines, ignoring blank lines and # comments, as the shell scripts source them.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return vars, nil
}
