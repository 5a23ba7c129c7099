package tracker

import (
	"slices"

	"github.com/go-logr/logr"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// foreignExamples is how many foreign keys the resume's log line names.
const foreignExamples = 5

// foreign reports whether ledger entry e was recorded under another identity than the tracker's: the key its
// workload's container renders now (CLUSTER, LOGICAL_ENVIRONMENT, PHYSICAL_ENVIRONMENT, DN_TEMPLATE) is not
// the entry's. An entry that does not name its workload and container cannot tell, and is not foreign.
func (t *Tracker) foreign(e ledger.Entry) bool {
	if e.Meta.Workload.Name == "" || e.Meta.Container == "" {
		return false
	}
	w := fromLedger(e.Meta.Workload)
	now := record.Key{
		LogicalEnvironment: t.cfg.LogicalEnvironment, PhysicalEnvironment: t.cfg.PhysicalEnvironment, Cluster: t.cfg.Cluster,
		DeploymentName: t.cfg.Template.Render(record.Vars{Namespace: w.Namespace, DeploymentName: w.Name, ContainerName: e.Meta.Container, Kind: w.Kind}),
	}
	return e.Want.Key() != now
}

// foreignRecords is what resume did with the ledger's entries under another identity.
type foreignRecords struct {
	retired, kept int
	examples      []string
}

// retireForeign ends entry e, recorded under another identity: the tracker no longer writes that key, so a
// deployed record would stay deployed at GitHub forever. It is decommissioned (written to the ledger, then
// delivered), unless KeepForeignRecords: then it is left as it is. Either way it is not adopted: the
// workload's records are decided under the current identity. Called by resume with t.mu held.
func (t *Tracker) retireForeign(e ledger.Entry, f *foreignRecords) {
	if len(f.examples) < foreignExamples {
		f.examples = append(f.examples, e.Want.Cluster+"/"+e.Want.LogicalEnvironment+"/"+e.Want.DeploymentName)
	}
	if t.cfg.KeepForeignRecords {
		f.kept++
		return
	}
	now := t.cfg.Now()
	if e.Want.Status == record.StatusDecommissioned {
		if !e.Synced {
			t.cfg.Desirer.Desire(e.Want, now) // already in the ledger: only its delivery was pending
		}
		return
	}
	r := e.Want
	r.Status = record.StatusDecommissioned
	t.decide(t.decision(r, fromLedger(e.Meta.Workload), e.Meta.Container, nil, 0, now))
	f.retired++
}

// log says once what resume did with foreign entries.
func (f *foreignRecords) log(log logr.Logger) {
	if f.retired == 0 && f.kept == 0 {
		return
	}
	slices.Sort(f.examples)
	if f.kept > 0 {
		log.Info("Ledger records under another identity (CLUSTER, an environment or DN_TEMPLATE changed) kept as they are (-keep-foreign-records)",
			"records", f.kept, "examples", f.examples)
		return
	}
	log.Info("Decommissioning the ledger records under another identity (CLUSTER, an environment or DN_TEMPLATE changed): "+
		"this tracker no longer writes their keys; -keep-foreign-records keeps them", "records", f.retired, "examples", f.examples)
}
