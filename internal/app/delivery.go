package app

import (
	"fmt"

	"github.com/go-logr/logr"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	deliverysink "github.com/deployment-tracker/deployment-tracker/internal/sink/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

// rolloutSinkDelivery is the delivery metrics sink.
const rolloutSinkDelivery = deliverysink.Name

// newDelivery is the delivery metrics rollout sink: its observations go to Prometheus (the tracker's registry)
// and to the exporters in a.deliveryExporters (OpenTelemetry). Workload annotations are read from the cache,
// GitHubDeployments too when the GitHub Deployments sink is on (otherwise nothing watches them), whole objects
// uncached for JSONPath rules and kinds the cache does not hold. Commits are looked up at GitHub, except in a
// dry run (annotations only: AnnotationCommitTime). With a ledger, the sink's state is kept there before each
// observation is recorded, and the ledger's history of a workload gives the time to restore.
func (a *App) newDelivery(c *cfgpkg.Config, led *ledger.Ledger, log logr.Logger) (sink.RolloutSink, error) {
	mgr := a.Manager
	objects := githubdeploy.APIObjects{Reader: mgr.GetAPIReader(), Mapper: mgr.GetRESTMapper()}
	dc := deliverysink.Config{
		Name:               rolloutSinkDelivery,
		LogicalEnvironment: c.LogicalEnvironment,
		Cluster:            c.Cluster,
		Org:                c.Org,
		Exporters:          append([]delivery.Exporter{deliverysink.NewPrometheus(a.Metrics.Delivery)}, a.deliveryExporters...),
		Workloads:          deliverysink.Workloads{Cache: mgr.GetCache(), Objects: objects},
		Objects:            objects,
	}
	if c.GitHubDeployments && !c.DryRun {
		dc.Targets = githubdeploy.Targets{Cache: mgr.GetCache(), API: mgr.GetAPIReader()}
	}
	if !c.DryRun {
		gh, err := a.gitHubClient(c)
		if err != nil {
			return nil, err
		}
		dc.Client = gh
	} else {
		log.Info("Dry run: delivery metrics take commit times from annotations only", "annotation", deliverysink.AnnotationCommitTime)
	}
	if led != nil {
		dc.History, dc.Ledger = led, led
	}
	s, err := deliverysink.New(dc)
	if err != nil {
		return nil, fmt.Errorf("delivery metrics sink: %w", err)
	}
	return s, nil
}
