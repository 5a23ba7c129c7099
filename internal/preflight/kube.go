package preflight

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
)

// certManagerGroupVersion is the API certs/ uses.
var certManagerGroupVersion = schema.GroupVersion{Group: "cert-manager.io", Version: "v1"}

// injectCAAnnotation names the Certificate whose CA cert-manager's cainjector copies into the caBundle.
const injectCAAnnotation = "cert-manager.io/inject-ca-from"

func (c *Checker) certManager(ctx context.Context) Result {
	r, missing := c.served(ctx, "cert-manager", certManagerGroupVersion, "certificates", "issuers")
	if missing {
		r.Message += ": install cert-manager first (https://cert-manager.io/docs/installation/) and wait for it to run; " +
			"without it kubectl apply -k deploy/ stops half-way at the first Certificate"
	}
	return r
}

func (c *Checker) ledgerCRDs(ctx context.Context) Result {
	if c.cfg.LedgerNamespace == "" {
		return Result{Warn, "ledger CRDs", "not checked: -ledger-namespace=- keeps the records in memory only, so a restart posts them all again"}
	}
	r, missing := c.served(ctx, "ledger CRDs", v1alpha1.GroupVersion, "deploymentrecords", "rolloutrecords")
	if missing {
		r.Message += ": apply deploy/05-crd.yaml (kubectl apply -k deploy/ does)"
	}
	return r
}

// served checks with discovery that gv serves every one of resources; missing reports a failure because some
// are not served (rather than because discovery failed). It asks the API server (no cache), so a CRD created
// a moment ago counts once it is established.
func (c *Checker) served(_ context.Context, check string, gv schema.GroupVersion, resources ...string) (r Result, missing bool) {
	want := make([]string, len(resources))
	for i, r := range resources {
		want[i] = r + "." + gv.Group
	}
	list, err := c.cfg.Kube.Discovery().ServerResourcesForGroupVersion(gv.String())
	switch {
	case apierrors.IsNotFound(err):
		return Result{Fail, check, fmt.Sprintf("%s is not served (no %s)", gv, strings.Join(want, ", "))}, true
	case err != nil:
		return apiFailure(check, "discovery of "+gv.String(), err), false
	}
	var absent []string
	for i, r := range resources {
		if !slices.ContainsFunc(list.APIResources, func(a metav1.APIResource) bool { return a.Name == r }) {
			absent = append(absent, want[i])
		}
	}
	if len(absent) > 0 {
		return Result{Fail, check, fmt.Sprintf("%s is served without %s", gv, strings.Join(absent, ", "))}, true
	}
	return Result{Pass, check, fmt.Sprintf("%s served (%s)", strings.Join(want, ", "), gv)}, false
}

// apiFailure is the result of a request to the API server that failed for another reason than the answer
// the check looks for: the API server is unreachable, or refuses the kubeconfig's credentials.
func apiFailure(check, what string, err error) Result {
	return Result{Fail, check, fmt.Sprintf("%s: %s: check -kubeconfig (or $KUBECONFIG) and that the API server is reachable", what, oneLine(unwrapURL(err).Error()))}
}

func (c *Checker) webhook(ctx context.Context) Result {
	const check = "webhook"
	name := c.cfg.WebhookConfiguration
	vwc, err := c.cfg.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Result{Fail, check, fmt.Sprintf("ValidatingWebhookConfiguration %s not found: apply deploy/60-webhook.yaml (kubectl apply -k deploy/ does)", name)}
	case apierrors.IsForbidden(err):
		// The tracker's own ServiceAccount, for one, may not: the check run in its pod says so and goes on.
		return Result{Warn, check, fmt.Sprintf("not checked: the identity in use may not get ValidatingWebhookConfiguration %s (forbidden)", name)}
	case err != nil:
		return apiFailure(check, "get ValidatingWebhookConfiguration "+name, err)
	}
	if len(vwc.Webhooks) == 0 {
		return Result{Fail, check, fmt.Sprintf("ValidatingWebhookConfiguration %s has no webhooks: apply deploy/60-webhook.yaml again", name)}
	}
	var problems, ok []string
	for _, wh := range vwc.Webhooks {
		if p := caProblem(wh.ClientConfig.CABundle); p != "" {
			from := vwc.Annotations[injectCAAnnotation]
			if from == "" {
				p += fmt.Sprintf(" and there is no %s annotation: set it to the serving Certificate (NAMESPACE/NAME), as deploy/60-webhook.yaml does", injectCAAnnotation)
			} else {
				ns, cert, _ := strings.Cut(from, "/")
				p += fmt.Sprintf(": cert-manager's cainjector copies it from Certificate %s; see kubectl -n %s describe certificate %s and the cainjector's log", from, ns, cert)
			}
			problems = append(problems, fmt.Sprintf("%s: %s", wh.Name, p))
			continue
		}
		switch svc := wh.ClientConfig.Service; {
		case svc != nil:
			msg, found := c.service(ctx, svc)
			if !found {
				problems = append(problems, fmt.Sprintf("%s: %s", wh.Name, msg))
				continue
			}
			ok = append(ok, fmt.Sprintf("%s: caBundle injected, %s", wh.Name, msg))
		case wh.ClientConfig.URL != nil:
			ok = append(ok, fmt.Sprintf("%s: caBundle injected, calls %s", wh.Name, *wh.ClientConfig.URL))
		default:
			problems = append(problems, fmt.Sprintf("%s: clientConfig has neither service nor url", wh.Name))
		}
	}
	if len(problems) > 0 {
		return Result{Fail, check, strings.Join(problems, "; ")}
	}
	return Result{Pass, check, fmt.Sprintf("%s: %s", name, strings.Join(ok, "; "))}
}

// caProblem says what is wrong with a caBundle, or "" when it holds at least one PEM certificate.
func caProblem(bundle []byte) string {
	if len(strings.TrimSpace(string(bundle))) == 0 {
		return "caBundle is empty"
	}
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "caBundle holds no PEM certificate"
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "caBundle holds a certificate that does not parse: " + oneLine(err.Error())
		}
		return ""
	}
}

// service reports whether the webhook's Service exists, and a message for either case.
func (c *Checker) service(ctx context.Context, ref *admissionregistrationv1.ServiceReference) (string, bool) {
	_, err := c.cfg.Kube.CoreV1().Services(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		return fmt.Sprintf("Service %s/%s exists", ref.Namespace, ref.Name), true
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("Service %s/%s not found: apply deploy/30-service.yaml (kubectl apply -k deploy/ does)", ref.Namespace, ref.Name), false
	default:
		return fmt.Sprintf("get Service %s/%s: %s", ref.Namespace, ref.Name, oneLine(unwrapURL(err).Error())), false
	}
}
