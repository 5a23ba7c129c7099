package app

import (
	"fmt"

	"github.com/go-logr/logr"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
)

// addRetention adds the ledger's retention (ledger.Retention), on the leader only: the DeploymentRecords of keys
// decommissioned and delivered more than -ledger-retention ago are deleted, a few minutes after the start and
// then hourly, so that workloads with unique names (CI runner pods, ad-hoc Jobs) do not grow the ledger without
// bound. Without a ledger, or with -ledger-retention=0, nothing is deleted. The dispatcher forgets such keys by
// itself once their decommission is delivered; the RolloutRecords have their own retention (-rollout-history,
// -rollout-max-age), applied by the rollout controller.
func (a *App) addRetention(c *cfgpkg.Config, o Options, led *ledger.Ledger, log logr.Logger) error {
	log = log.WithName("retention")
	if led == nil {
		return nil
	}
	if c.LedgerRetention == 0 {
		log.Info("Ledger retention off (-ledger-retention=0): decommissioned records stay in the ledger")
		return nil
	}
	r, err := ledger.NewRetention(ledger.RetentionConfig{
		Ledger: led, Age: c.LedgerRetention, Interval: o.RetentionInterval, Delay: o.RetentionInterval,
		Metrics: a.Metrics, Log: log,
	})
	if err != nil {
		return err
	}
	if err := a.Manager.Add(r); err != nil {
		return fmt.Errorf("adding the ledger retention: %w", err)
	}
	return nil
}
