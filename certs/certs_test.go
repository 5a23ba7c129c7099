package certs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
)

var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(cmapi.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// chain is the issuer chain, typed.
type chain struct {
	kinds      []string // kinds of Objects(), in order
	selfSigned *cmapi.Issuer
	caCert     *cmapi.Certificate
	caIssuer   *cmapi.Issuer
	serving    *cmapi.Certificate
}

func loadChain(t *testing.T) *chain {
	t.Helper()
	objs, err := certs.Objects()
	if err != nil {
		t.Fatalf("Objects() error = %v", err)
	}
	var c chain
	for _, u := range objs {
		j, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := strictDecoder.Decode(j, nil, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		c.kinds = append(c.kinds, u.GetKind())
		switch o := obj.(type) {
		case *cmapi.Issuer:
			switch o.Name {
			case certs.SelfSignedIssuerName:
				c.selfSigned = o
			case certs.CAIssuerName:
				c.caIssuer = o
			default:
				t.Fatalf("unexpected Issuer %s", o.Name)
			}
		case *cmapi.Certificate:
			switch o.Name {
			case certs.CACertificateName:
				c.caCert = o
			case certs.ServingCertificateName:
				c.serving = o
			default:
				t.Fatalf("unexpected Certificate %s", o.Name)
			}
		default:
			t.Fatalf("unexpected %T", obj)
		}
	}
	if c.selfSigned == nil || c.caCert == nil || c.caIssuer == nil || c.serving == nil {
		t.Fatalf("want two Issuers and two Certificates, got %v", c.kinds)
	}
	return &c
}

var checks = []struct {
	name string
	fn   func(c *chain) error
}{
	{"apply order", func(c *chain) error {
		if want := []string{"Issuer", "Certificate", "Issuer", "Certificate"}; !slices.Equal(c.kinds, want) {
			return fmt.Errorf("kinds %v, want %v (self-signed Issuer, CA, CA Issuer, serving certificate)", c.kinds, want)
		}
		return nil
	}},
	{"one namespace", func(c *chain) error {
		var errs []error
		for _, ns := range []string{c.selfSigned.Namespace, c.caCert.Namespace, c.caIssuer.Namespace, c.serving.Namespace} {
			if ns != certs.Namespace {
				errs = append(errs, fmt.Errorf("namespace %q, want %q", ns, certs.Namespace))
			}
		}
		return errors.Join(errs...)
	}},
	{"issuer chain", func(c *chain) error {
		var errs []error
		if c.selfSigned.Spec.SelfSigned == nil || c.selfSigned.Spec.CA != nil {
			errs = append(errs, fmt.Errorf("issuer %s: want selfSigned only", c.selfSigned.Name))
		}
		if !c.caCert.Spec.IsCA {
			errs = append(errs, fmt.Errorf("certificate %s: want isCA", c.caCert.Name))
		}
		if c.serving.Spec.IsCA {
			errs = append(errs, fmt.Errorf("certificate %s: a serving certificate is no CA", c.serving.Name))
		}
		ref := func(cert *cmapi.Certificate, iss *cmapi.Issuer) {
			r := cert.Spec.IssuerRef
			if r.Name != iss.Name || r.Kind != cmapi.IssuerKind || r.Group != "cert-manager.io" {
				errs = append(errs, fmt.Errorf("certificate %s: issuerRef %+v, want Issuer %s", cert.Name, r, iss.Name))
			}
		}
		ref(c.caCert, c.selfSigned)
		ref(c.serving, c.caIssuer)
		if c.caIssuer.Spec.CA == nil || c.caIssuer.Spec.CA.SecretName != c.caCert.Spec.SecretName {
			errs = append(errs, fmt.Errorf("issuer %s: want ca.secretName %s (the CA certificate's Secret)", c.caIssuer.Name, c.caCert.Spec.SecretName))
		}
		if c.caCert.Spec.SecretName == c.serving.Spec.SecretName {
			errs = append(errs, errors.New("the CA and the serving certificate share a Secret"))
		}
		return errors.Join(errs...)
	}},
	{"keys rotate", func(c *chain) error {
		var errs []error
		for _, cert := range []*cmapi.Certificate{c.caCert, c.serving} {
			pk := cert.Spec.PrivateKey
			switch {
			case pk == nil || pk.RotationPolicy != cmapi.RotationPolicyAlways:
				errs = append(errs, fmt.Errorf("certificate %s: want privateKey.rotationPolicy Always", cert.Name))
			case !(pk.Algorithm == cmapi.ECDSAKeyAlgorithm && pk.Size >= 256) && !(pk.Algorithm == cmapi.RSAKeyAlgorithm && pk.Size >= 2048):
				errs = append(errs, fmt.Errorf("certificate %s: want an ECDSA (>= 256) or RSA (>= 2048) key, got %s/%d", cert.Name, pk.Algorithm, pk.Size))
			}
		}
		return errors.Join(errs...)
	}},
	{"lifetimes", func(c *chain) error {
		var errs []error
		d := func(cert *cmapi.Certificate) (time.Duration, time.Duration) {
			if cert.Spec.Duration == nil || cert.Spec.RenewBefore == nil {
				errs = append(errs, fmt.Errorf("certificate %s: want explicit duration and renewBefore", cert.Name))
				return 0, 0
			}
			life, renew := cert.Spec.Duration.Duration, cert.Spec.RenewBefore.Duration
			if renew <= 0 || renew >= life {
				errs = append(errs, fmt.Errorf("certificate %s: renewBefore %s must be within duration %s", cert.Name, renew, life))
			}
			return life, renew
		}
		caLife, caRenew := d(c.caCert)
		life, _ := d(c.serving)
		if life > 90*24*time.Hour {
			errs = append(errs, fmt.Errorf("certificate %s: duration %s, want at most 90 days", c.serving.Name, life))
		}
		// After the CA is renewed (caRenew before it expires), the next renewal of the serving certificate
		// (at most one serving lifetime later) must come before the old CA expires.
		if life >= caRenew || caLife <= life {
			errs = append(errs, fmt.Errorf("serving certificate lifetime %s must be shorter than the CA's renewBefore %s", life, caRenew))
		}
		return errors.Join(errs...)
	}},
	{"serving certificate is for TLS servers", func(c *chain) error {
		var errs []error
		if !slices.Contains(c.serving.Spec.Usages, cmapi.UsageServerAuth) {
			errs = append(errs, fmt.Errorf("certificate %s: usages %v lack server auth", c.serving.Name, c.serving.Spec.Usages))
		}
		if c.serving.Spec.SecretName != "deployment-tracker-webhook-tls" {
			errs = append(errs, fmt.Errorf("certificate %s: secretName %s", c.serving.Name, c.serving.Spec.SecretName))
		}
		for _, n := range c.serving.Spec.DNSNames {
			if !strings.HasPrefix(n, "deployment-tracker-webhook") {
				errs = append(errs, fmt.Errorf("certificate %s: dnsName %s", c.serving.Name, n))
			}
		}
		return errors.Join(errs...)
	}},
}

func TestCertificates(t *testing.T) {
	c := loadChain(t)
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if err := ch.fn(c); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestChecksCatchBrokenChain breaks the chain in one place at a time and expects the named check to fail.
func TestChecksCatchBrokenChain(t *testing.T) {
	mutations := []struct {
		check  string
		mutate func(c *chain)
	}{
		{"apply order", func(c *chain) { c.kinds[0], c.kinds[1] = c.kinds[1], c.kinds[0] }},
		{"one namespace", func(c *chain) { c.caIssuer.Namespace = "cert-manager" }},
		{"issuer chain", func(c *chain) { c.serving.Spec.IssuerRef.Name = c.selfSigned.Name }},
		{"issuer chain", func(c *chain) { c.caCert.Spec.IsCA = false }},
		{"issuer chain", func(c *chain) { c.caIssuer.Spec.CA.SecretName = c.serving.Spec.SecretName }},
		{"keys rotate", func(c *chain) { c.serving.Spec.PrivateKey.RotationPolicy = cmapi.RotationPolicyNever }},
		{"keys rotate", func(c *chain) { c.caCert.Spec.PrivateKey.Size = 128 }},
		{"lifetimes", func(c *chain) { c.serving.Spec.RenewBefore = c.serving.Spec.Duration }},
		{"lifetimes", func(c *chain) { c.caCert.Spec.RenewBefore.Duration = time.Hour }},
		{"serving certificate is for TLS servers", func(c *chain) { c.serving.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageClientAuth} }},
	}
	covered := map[string]bool{}
	for i, m := range mutations {
		idx := slices.IndexFunc(checks, func(ch struct {
			name string
			fn   func(c *chain) error
		}) bool {
			return ch.name == m.check
		})
		if idx < 0 {
			t.Fatalf("mutation %d names no check %q", i, m.check)
		}
		covered[m.check] = true
		t.Run(fmt.Sprintf("%s/%d", m.check, i), func(t *testing.T) {
			c := loadChain(t)
			m.mutate(c)
			if err := checks[idx].fn(c); err == nil {
				t.Errorf("check %q passed on a broken chain", m.check)
			}
		})
	}
	for _, ch := range checks {
		if !covered[ch.name] {
			t.Errorf("check %q: no mutation shows that it can fail", ch.name)
		}
	}
}

func TestTypedAccessors(t *testing.T) {
	c := loadChain(t)
	tests := []struct {
		name string
		get  func() (any, error)
		want any
	}{
		{"ServingCertificate", func() (any, error) { return certs.ServingCertificate() }, c.serving},
		{"CACertificate", func() (any, error) { return certs.CACertificate() }, c.caCert},
		{"SelfSignedIssuer", func() (any, error) { return certs.SelfSignedIssuer() }, c.selfSigned},
		{"CAIssuer", func() (any, error) { return certs.CAIssuer() }, c.caIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if err != nil {
				t.Fatalf("%s() error = %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s() differs from the strictly decoded manifest (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// TestCRDPaths checks that the directory holds cert-manager's CRDs for the kinds this package ships, in the
// API version of its Go types.
func TestCRDPaths(t *testing.T) {
	dir, err := certs.CRDPaths()
	if err != nil {
		t.Fatalf("CRDPaths() error = %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, u := range objs {
			j, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			obj, _, err := strictDecoder.Decode(j, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
			if !ok {
				t.Fatalf("%s: %T, want a CustomResourceDefinition", filepath.Base(f), obj)
			}
			for _, v := range crd.Spec.Versions {
				if v.Served {
					served[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = true
				}
			}
		}
	}
	for _, kind := range []string{cmapi.CertificateKind, cmapi.IssuerKind, cmapi.CertificateRequestKind} {
		if key := cmapi.SchemeGroupVersion.String() + "/" + kind; !served[key] {
			t.Errorf("%s: no served CRD for %s (have %v)", dir, key, served)
		}
	}
}
