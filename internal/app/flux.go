package app

import (
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/flux"
)

// addFlux adds the Flux controller (internal/flux): the apply lead time of every revision a Flux Kustomization
// applies, observed once, on the leader only, once discovery shows the Kustomization API. The observed
// revisions are kept in a ConfigMap in the ledger namespace (in memory without a ledger); commit times come
// from GitHub through the sinks' client (annotations only in a dry run, which has no credentials).
func (a *App) addFlux(c *cfgpkg.Config, log logr.Logger) error {
	log = log.WithName("flux")
	if c.FluxDiscoveryInterval == 0 {
		log.Info("Flux apply lead time off (-flux-discovery-interval=0)")
		return nil
	}
	mgr := a.Manager
	dyn, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("Flux: dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("Flux: discovery client: %w", err)
	}
	var led flux.Ledger = &flux.MemoryLedger{}
	if c.LedgerNamespace != "" && !c.DryRun {
		led = &flux.ConfigMapLedger{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: c.LedgerNamespace}
	} else {
		log.Info("No ledger: the Flux revisions observed are kept in memory only, and observed again after a restart")
	}
	fc := flux.Config{
		Dynamic: dyn, Discovery: disc, Namespace: c.Namespace, Ledger: led,
		Hosts:             flux.GitHubHosts(c.BaseURL),
		Recorder:          flux.Prometheus{LeadTime: a.Metrics.Flux.ApplyLeadTime, WithoutCommit: a.Metrics.Flux.RevisionsWithoutCommit},
		Cluster:           c.Cluster,
		DiscoveryInterval: c.FluxDiscoveryInterval,
		Log:               log,
	}
	if !c.DryRun {
		gh, err := a.gitHubClient(c)
		if err != nil {
			return err
		}
		if fc.Commits, err = flux.NewGitHubCommits(flux.GitHubCommitsConfig{Client: gh}); err != nil {
			return fmt.Errorf("Flux: %w", err)
		}
	}
	ctl, err := flux.New(fc)
	if err != nil {
		return fmt.Errorf("Flux: %w", err)
	}
	// The controller needs leader election (NeedLeaderElection): a standby observes nothing.
	if err := mgr.Add(ctl); err != nil {
		return fmt.Errorf("adding the Flux controller: %w", err)
	}
	return nil
}
