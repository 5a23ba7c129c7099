package metrics

import "github.com/prometheus/client_golang/prometheus"

// Ledger are the metrics of the ledger's retention (internal/ledger.Retention): what it deletes, and how large
// the ledger is. Neither has labels.
type Ledger struct {
	// RecordsDeleted counts the DeploymentRecords the retention deleted: decommissioned and delivered more
	// than -ledger-retention ago.
	RecordsDeleted prometheus.Counter
	// Records is the number of DeploymentRecords in the ledger after the last retention pass.
	Records prometheus.Gauge
}

// newLedger creates the ledger collectors and registers them on reg.
func newLedger(reg prometheus.Registerer) *Ledger {
	l := &Ledger{
		RecordsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_ledger_records_deleted_total",
			Help: "The total number of DeploymentRecords deleted from the ledger by its retention: decommissioned, delivered, and older than -ledger-retention.",
		}),
		Records: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deptracker_ledger_records",
			Help: "DeploymentRecords in the ledger, counted by the last retention pass (0 until the first, or with -ledger-retention=0).",
		}),
	}
	reg.MustRegister(l.RecordsDeleted, l.Records)
	return l
}
