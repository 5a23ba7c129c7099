package app

import (
	"context"
	"fmt"

	"github.com/deployment-tracker/deployment-tracker/internal/dispatch"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/github"
)

// The GitHub sink checks its organization (GET /orgs/{org}) before the first post and when a 404 is not the
// unknown-artifact answer; the dispatcher pauses it while the organization is missing.
var _ dispatch.TargetChecker = (*github.Sink)(nil)

// guardNotFound adds to the records' dispatcher what keeps its 404s true (internal/dispatch/notfound.go):
//
//   - OnMisconfigured sets deptracker_sink_misconfigured{sink}: 1 while the sink's target does not exist (a wrong
//     ORG, or a GitHub Enterprise Server BASE_URL without /api/v3), posting to it paused and every record kept;
//     the dispatcher logs the error, naming ORG and BASE_URL, and the ledger shows the reason Misconfigured.
//   - NotAttested takes, from the tracker's read of the ledger at resume, the artifacts GitHub answered had no
//     attestation before a restart, so that they are not posted again before -unknown-artifact-ttl has passed.
func (a *App) guardNotFound(dc *dispatch.Config, led *ledger.Ledger) {
	gauge := a.Metrics.SinkMisconfigured
	gauge.WithLabelValues(dc.SinkName).Set(0)
	dc.OnMisconfigured = func(sinkName string, misconfigured bool, _ error) {
		v := 0.0
		if misconfigured {
			v = 1
		}
		gauge.WithLabelValues(sinkName).Set(v)
	}
	if led != nil {
		dc.NotAttested = func(ctx context.Context) ([]dispatch.NotAttested, error) { return a.notAttested(ctx) }
	}
}

// notAttested lists the artifacts the ledger remembers as not attested, by key, as the tracker read them.
func (a *App) notAttested(ctx context.Context) ([]dispatch.NotAttested, error) {
	entries, err := a.Tracker.NotAttested(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the artifacts without attestation: %w", err)
	}
	var out []dispatch.NotAttested
	for _, e := range entries {
		if na := e.NotAttested; na != nil {
			out = append(out, dispatch.NotAttested{Key: e.Want.Key(), Name: na.Name, Digest: na.Digest, Until: na.Until, Message: na.Message})
		}
	}
	return out, nil
}
