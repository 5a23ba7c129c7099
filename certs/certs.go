// Package certs holds the cert-manager objects that give the tracker's admission webhook its serving
// certificate (the *.yaml files beside this file): a self-signed Issuer, a CA Certificate, a CA Issuer and the
// serving Certificate, all in the namespace deployment-tracker. Install them after the namespace exists and
// cert-manager runs, with kubectl apply -k deploy/ (which includes this directory), kubectl apply -k certs/ or
// kubectl apply -f certs/. The kustomization file is named Kustomization so that apply -f skips it.
//
// CRDPaths locates cert-manager's CustomResourceDefinitions in the Go module cache, for tests that install
// them into a test API server.
package certs

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
)

//go:embed *.yaml
var files embed.FS

// Names of the shipped objects, all in namespace Namespace.
const (
	Namespace              = "deployment-tracker"
	SelfSignedIssuerName   = "deployment-tracker-selfsigned"
	CACertificateName      = "deployment-tracker-root-ca"
	CAIssuerName           = "deployment-tracker-ca"
	ServingCertificateName = "deployment-tracker-serving-cert"
)

// Objects returns the cert-manager objects in apply order: self-signed Issuer, CA Certificate, CA Issuer,
// serving Certificate. Each call decodes the embedded files again, so callers may modify the returned objects.
func Objects() ([]*unstructured.Unstructured, error) {
	objs, err := manifest.Load(files)
	if err != nil {
		return nil, fmt.Errorf("certs manifests: %w", err)
	}
	return objs, nil
}

// ServingCertificate returns the webhook's serving Certificate: its Secret is mounted by the Deployment and
// its CA injected into the ValidatingWebhookConfiguration.
func ServingCertificate() (*cmapi.Certificate, error) { return certificate(ServingCertificateName) }

// CACertificate returns the CA Certificate (isCA) that signs the serving certificate.
func CACertificate() (*cmapi.Certificate, error) { return certificate(CACertificateName) }

// SelfSignedIssuer returns the self-signed Issuer that signs the CA Certificate.
func SelfSignedIssuer() (*cmapi.Issuer, error) { return issuer(SelfSignedIssuerName) }

// CAIssuer returns the CA Issuer, backed by the CA Certificate's Secret, that signs the serving certificate.
func CAIssuer() (*cmapi.Issuer, error) { return issuer(CAIssuerName) }

func certificate(name string) (*cmapi.Certificate, error) {
	return find[cmapi.Certificate](cmapi.CertificateKind, name)
}

func issuer(name string) (*cmapi.Issuer, error) { return find[cmapi.Issuer](cmapi.IssuerKind, name) }

func find[T any](kind, name string) (*T, error) {
	objs, err := Objects()
	if err != nil {
		return nil, err
	}
	obj, err := manifest.FindTyped[T](objs, schema.GroupKind{Group: cmapi.SchemeGroupVersion.Group, Kind: kind}, name)
	if err != nil {
		return nil, fmt.Errorf("certs manifests: %w", err)
	}
	return obj, nil
}

// certManagerModule is the Go module whose deploy/crds directory holds cert-manager's CRDs.
const certManagerModule = "github.com/cert-manager/cert-manager"

// CRDPaths returns the directory of cert-manager's CustomResourceDefinitions (deploy/crds, one YAML file per
// CRD) inside the Go module cache, for envtest's CRDDirectoryPaths. The version is the one of the cert-manager
// module this package's Go types come from, so the CRDs match them: the binary's build information names it,
// and where it does not (go test binaries carry no dependency list), go list -m in the current directory,
// which must then be inside this module. It needs the go command in PATH; when the module is not in the cache
// yet, go mod download fetches it.
func CRDPaths() (string, error) {
	version, dir, err := certManagerFromBuildInfo()
	if err != nil {
		if version, dir, err = certManagerFromGoList(); err != nil {
			return "", fmt.Errorf("cert-manager CRDs: %w", err)
		}
	}
	if dir != "" {
		return crdDir(dir)
	}
	cache, err := goCommand("", "env", "GOMODCACHE")
	if err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	if cache = strings.TrimSpace(cache); cache != "" {
		if dir, err := crdDir(filepath.Join(cache, escape(certManagerModule)+"@"+escape(version))); err == nil {
			return dir, nil
		}
	}
	// Not in the cache yet. Run outside any module so that no go.mod or go.sum is touched. With -json, go mod
	// download reports a failure to download in the Error field of its output.
	out, err := goCommand(os.TempDir(), "mod", "download", "-json", certManagerModule+"@"+version)
	var dl struct{ Dir, Error string }
	if jerr := json.Unmarshal([]byte(out), &dl); jerr == nil && dl.Error != "" {
		return "", fmt.Errorf("cert-manager CRDs: go mod download: %s", dl.Error)
	}
	if err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	if dl.Dir == "" {
		return "", fmt.Errorf("cert-manager CRDs: go mod download printed no module directory: %q", out)
	}
	return crdDir(dl.Dir)
}

// certManagerFromBuildInfo returns the version of the cert-manager module in the binary's build information,
// or the local directory a replace directive points it at.
func certManagerFromBuildInfo() (version, dir string, err error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", errors.New("no build information in this binary")
	}
	for _, dep := range bi.Deps {
		if dep.Path != certManagerModule {
			continue
		}
		if r := dep.Replace; r != nil {
			if r.Version == "" {
				return "", r.Path, nil
			}
			return r.Version, "", nil
		}
		return dep.Version, "", nil
	}
	return "", "", fmt.Errorf("module %s is not in the build information of this binary", certManagerModule)
}

// certManagerFromGoList asks the go command which cert-manager module the main module (the one around the
// current directory) uses, and where it is if it has been downloaded.
func certManagerFromGoList() (version, dir string, err error) {
	out, err := goCommand("", "list", "-m", "-json", certManagerModule)
	if err != nil {
		return "", "", err
	}
	var m struct {
		Version, Dir string
		Replace      *struct{ Version, Dir string }
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return "", "", fmt.Errorf("go list -m output: %w", err)
	}
	if r := m.Replace; r != nil {
		return r.Version, r.Dir, nil
	}
	if m.Version == "" && m.Dir == "" {
		return "", "", fmt.Errorf("go list -m %s: no version", certManagerModule)
	}
	return m.Version, m.Dir, nil
}

func crdDir(moduleDir string) (string, error) {
	dir := filepath.Join(moduleDir, "deploy", "crds")
	if _, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml")); err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	return dir, nil
}

// goCommand runs the go command in dir (the current directory if empty) and returns its standard output, also
// when it fails.
func goCommand(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// escape is the module cache's case encoding (golang.org/x/mod/module.EscapePath): each upper-case letter
// becomes '!' and its lower-case form, so that module paths differing only in case do not collide on
// case-insensitive file systems.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
