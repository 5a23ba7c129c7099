package app

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
)

// Reasons of the Events of a sink's credentials.
const (
	reasonCredentialsRefused  = "SinkCredentialsRefused"
	reasonCredentialsAccepted = "SinkCredentialsAccepted"
)

// recordSinkName names the record sink in deptracker_sink_credentials_refused, the logs and the Events: the
// name the ledger keeps its status under, or the log sink's in a dry run.
func recordSinkName(c *cfgpkg.Config) string {
	if c.DryRun {
		return rolloutSinkLog
	}
	return ledger.SinkGitHub
}

// credentialEvents tells of a sink that refuses the credentials, or accepts them again, with a Kubernetes
// Event: the dispatchers' OnCredentials. The sink's state is a fact about the tracker, not about a workload,
// so the Event goes on the tracker's leader-election Lease: it exists whenever a dispatcher runs (they run on
// the leader only), it is in the tracker's namespace, the RBAC already lets the tracker emit Events on it, and
// `kubectl describe lease` shows them next to the leadership Events. (The Pod would do too, but the manifests
// give it no POD_NAME, and a Deployment's name is not known to the tracker.) Without leader election there is
// no Lease, and no Event: the gauge deptracker_sink_credentials_refused, the log and the ledger conditions
// (reason CredentialsRefused) still tell.
//
// The refusal deliberately fails no health check: failing readiness would take the webhook's endpoints out of
// its Service (admission is unaffected by a sink's credentials) and failing liveness would restart a tracker
// that loses nothing by waiting, while controller-runtime's checks cannot carry a detail without failing.
type credentialEvents struct {
	rec    record.EventRecorder
	reader client.Reader // reads the Lease's UID once, so that the Events show on `kubectl describe lease`
	lease  types.NamespacedName
	log    logr.Logger

	mu  sync.Mutex
	uid types.UID
}

// newCredentialEvents returns the OnCredentials callback of the dispatchers; nil when there is no Lease.
func (a *App) newCredentialEvents(c *cfgpkg.Config, log logr.Logger) func(sinkName string, refused bool, err error) {
	if !c.LeaderElect || c.LeaderElectionNamespace == "" {
		log.V(1).Info("No leader election Lease: a sink refusing the credentials is told by the log, the metrics and the ledger, not by an Event")
		return nil
	}
	e := &credentialEvents{
		rec:    a.Manager.GetEventRecorderFor("deployment-tracker"),
		reader: a.Manager.GetAPIReader(),
		lease:  types.NamespacedName{Namespace: c.LeaderElectionNamespace, Name: c.LeaderElectionID},
		log:    log,
	}
	return e.on
}

// on emits the Event of one transition. It is called on a dispatcher's worker, once per transition: the
// Lease is read once (a short GET), and the recorder does not block.
func (e *credentialEvents) on(sinkName string, refused bool, err error) {
	ref := &corev1.ObjectReference{
		APIVersion: coordinationv1.SchemeGroupVersion.String(), Kind: "Lease",
		Namespace: e.lease.Namespace, Name: e.lease.Name, UID: e.leaseUID(),
	}
	if refused {
		e.rec.Eventf(ref, corev1.EventTypeWarning, reasonCredentialsRefused,
			"Sink %s refuses the tracker's credentials; posting to it is paused and retried with backoff, nothing is dropped: %s", sinkName, err.Error())
		return
	}
	e.rec.Eventf(ref, corev1.EventTypeNormal, reasonCredentialsAccepted, "Sink %s accepts the tracker's credentials again; posting resumed", sinkName)
}

// leaseUID is the UID of the Lease, read once; empty when it cannot be read (the Event is still listed by
// `kubectl get events`).
func (e *credentialEvents) leaseUID() types.UID {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.uid != "" {
		return e.uid
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var l coordinationv1.Lease
	if err := e.reader.Get(ctx, e.lease, &l); err != nil {
		e.log.V(1).Info("Cannot read the leader election Lease; its Event has no UID", "lease", e.lease.String(), "error", err.Error())
		return ""
	}
	e.uid = l.UID
	return e.uid
}
