package preflight

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/deployment-tracker/deployment-tracker/internal/config"
)

// Options are what the command line does not say: overrides for tests and embedding.
type Options struct {
	// Stdout receives the result lines (default os.Stdout), Stderr usage and configuration errors (default
	// os.Stderr).
	Stdout, Stderr io.Writer
	// RestConfig is the API server to check; default from -kubeconfig, $KUBECONFIG, the in-cluster config or
	// ~/.kube/config, as the tracker finds it. With RestConfig, the check counts as run outside the cluster.
	RestConfig *rest.Config
	// HTTPClient is the client of the GitHub call.
	HTTPClient *http.Client
}

// checkFlags are the flags of the check only; every other flag and variable is the tracker's, parsed by
// config.Parse.
type checkFlags struct {
	asServiceAccount     bool
	namespace            string
	serviceAccount       string
	webhookConfiguration string
}

func (f *checkFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&f.asServiceAccount, "check-as-serviceaccount", false,
		"check the RBAC of the tracker's ServiceAccount (SubjectAccessReview) instead of the identity in use (SelfSubjectAccessReview); default true outside the cluster, false inside")
	fs.StringVar(&f.namespace, "check-namespace", "", "the tracker's namespace, of its ServiceAccount and Lease (default: $POD_NAMESPACE, or "+DefaultNamespace+")")
	fs.StringVar(&f.serviceAccount, "check-serviceaccount", DefaultServiceAccount, "the tracker's ServiceAccount")
	fs.StringVar(&f.webhookConfiguration, "check-webhook-configuration", DefaultWebhookConfiguration, "the tracker's ValidatingWebhookConfiguration")
}

// Main is `deployment-tracker check [flags]`: args are the flags after "check", the tracker's own (parsed by
// config.Parse, from the same variables) and the check's. It returns the exit status: 0 when no check failed,
// 1 when one did, 2 for a bad configuration or command line (as the tracker), and 0 for -h.
func Main(ctx context.Context, args []string, env config.Env, o Options) int {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	fs := flag.NewFlagSet("deployment-tracker check", flag.ContinueOnError)
	// The logger's flags are accepted, so that the tracker's command line works unchanged; the check writes
	// results, not logs.
	(&zap.Options{}).BindFlags(fs)
	var cf checkFlags
	cf.bind(fs)
	cfg, err := config.Parse(fs, args, env)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(o.Stdout, fs)
		return 0
	case err != nil:
		fmt.Fprintf(o.Stderr, "deployment-tracker check: invalid configuration:\n%v\n(deployment-tracker check -h lists the flags and environment variables)\n", err)
		return 2
	}
	rc, inCluster := o.RestConfig, false
	if rc == nil {
		if rc, inCluster, err = restConfig(cfg.Kubeconfig, env); err != nil {
			fmt.Fprintf(o.Stderr, "deployment-tracker check: -kubeconfig: %v\n", err)
			return 2
		}
	}
	rc = rest.CopyConfig(rc)
	// A few dozen access reviews: client-go's default of 5 requests per second would make them take seconds.
	rc.QPS, rc.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		fmt.Fprintf(o.Stderr, "deployment-tracker check: -kubeconfig: %v\n", err)
		return 2
	}

	pc := configure(fs, cfg, cf, env, inCluster)
	pc.Kube, pc.HTTPClient = kube, o.HTTPClient
	c, err := New(pc)
	if err != nil {
		fmt.Fprintf(o.Stderr, "deployment-tracker check: %v\n", err)
		return 2
	}
	return Print(o.Stdout, c.Run(ctx))
}

// configure derives the Checker's Config from the command line: the check's flags, and where they are not
// set, the tracker's configuration and the shipped names.
func configure(fs *flag.FlagSet, cfg *config.Config, cf checkFlags, env config.Env, inCluster bool) Config {
	pc := Config{
		Tracker:              cfg,
		Namespace:            cf.namespace,
		ServiceAccount:       cf.serviceAccount,
		WebhookConfiguration: cf.webhookConfiguration,
		// Outside the cluster, the identity in use is a person's, not the tracker's.
		AsServiceAccount: !inCluster,
	}
	ledgerFlag := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "check-as-serviceaccount":
			pc.AsServiceAccount = cf.asServiceAccount
		case "ledger-namespace":
			ledgerFlag = true
		}
	})
	if pc.Namespace == "" {
		// POD_NAMESPACE, through the configuration, or the shipped namespace.
		pc.Namespace = cfg.LeaderElectionNamespace
	}
	if pc.Namespace == "" {
		pc.Namespace = DefaultNamespace
	}
	// The ledger is on unless -ledger-namespace=- (which config.Parse turns into ""). Outside the cluster
	// POD_NAMESPACE is unset, but the tracker in the cluster has it: the ledger is then in the tracker's
	// namespace.
	pc.LedgerNamespace = cfg.LedgerNamespace
	if pc.LedgerNamespace == "" && !ledgerFlag {
		pc.LedgerNamespace = pc.Namespace
	}
	if cfg.APIToken != "" {
		pc.CredentialVariables = "API_TOKEN"
		if v, _ := env("API_TOKEN_FILE"); v != "" {
			pc.CredentialVariables = "API_TOKEN_FILE"
		}
	}
	return pc
}

// restConfig finds the API server as the tracker does (controller-runtime's order): -kubeconfig, $KUBECONFIG,
// the in-cluster config, ~/.kube/config. It reports whether it runs in the cluster.
func restConfig(kubeconfig string, env config.Env) (*rest.Config, bool, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		return rc, false, err
	}
	if v, _ := env(clientcmd.RecommendedConfigPathEnvVar); v == "" {
		if rc, err := rest.InClusterConfig(); err == nil {
			return rc, true, nil
		}
	}
	rc, err := ctrlconfig.GetConfig()
	return rc, false, err
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `Usage: deployment-tracker check [flags]

Checks what the tracker needs, with the tracker's own flags and environment variables: cert-manager's and the
ledger's CRDs, the webhook's injected CA and Service, the tracker's RBAC, and the GitHub credentials and ORG
(one GET /orgs/ORG). One line per check, PASS, WARN or FAIL; exit status 0 when none failed, 1 when one did, 2
for a bad configuration.

Flags:
`)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprintf(w, "\nEnvironment variables:\n")
	for _, v := range config.EnvVars {
		fmt.Fprintf(w, "  %s\n    \t%s\n", v.Name, v.Usage)
	}
}
