// Package ledger keeps the tracker's records durable in the cluster, as DeploymentRecord objects in the
// tracker's namespace: the spec is the record as it must be at the sinks, the status what each sink accepted.
// After a restart or a leader change the tracker resumes from it: what is synced is not posted again, what is
// not is, and workloads that went away meanwhile are decommissioned.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// SinkGitHub names the GitHub sink in the status.
const SinkGitHub = "github"

// Meta is what the ledger keeps about a record besides the record itself.
type Meta struct {
	Workload   v1alpha1.Workload
	Container  string
	PodStarted time.Time
	Source     string
	// Revision is the number of the workload's revision that decided the digest (0: not revision-aware).
	Revision int64
}

// Entry is one record of the ledger.
type Entry struct {
	// Want is the record as it must be at the sink (spec).
	Want record.Record
	Meta Meta
	// Have is what the sink accepted last, if anything (status); Synced reports that the sink holds Want (for a
	// decommissioned Want: that the key is decommissioned, whatever the digest GitHub held).
	Have   *record.Record
	Synced bool
	// NotAttested, if set, is the artifact the sink last answered it has no attestation for under this key,
	// and when it may be posted again (status: notAttested and nextRetry).
	NotAttested *NotAttested
}

// NotAttested is an artifact a sink has no attestation for (a 404 "no artifacts found"), remembered across
// restarts so that it is not posted again before Until.
type NotAttested struct {
	Name, Digest string
	// Until is when it is to be tried again: the nextRetry the dispatcher reported with the 404.
	Until time.Time
	// Message is the lastError kept with it.
	Message string
}

// Ledger reads and writes DeploymentRecords in one namespace.
type Ledger struct {
	// Client writes; Reader reads without a cache (the ledger is read once at start and before each write).
	Client    client.Client
	Reader    client.Reader
	Namespace string
	// Sink is the name of the sink whose status this ledger keeps (SinkGitHub).
	Sink string
	// Now is the clock (default time.Now).
	Now func() time.Time

	// pageSize is how many objects one LIST returns at most (0: defaultPageSize); tests make it small.
	pageSize int

	mu    sync.Mutex
	known map[string]bool // object names the ledger holds, as far as this process knows (Put creates others first)
}

func (l *Ledger) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Name is the object name of a record key: the key's parts can hold any character and any length, so the
// name is a hash of them.
func Name(k record.Key) string {
	h := sha256.New()
	for _, p := range []string{k.LogicalEnvironment, k.PhysicalEnvironment, k.Cluster, k.DeploymentName} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "dr-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// ErrOlder is returned by Put when the ledger already holds a deployed record decided by a newer revision or a
// newer pod.
var ErrOlder = errors.New("the ledger holds a record decided by a newer revision")

// Put makes r the desired record of its key. An older decision never overwrites a newer one (ErrOlder), for
// example when a leader takes over with a cache that lags: for the same workload, a deployed record decided by
// a lower revision number than the current spec's does not replace it. A rollback is not older: it makes the
// restored template current under a new, higher number. Without revision numbers on both sides (kinds without
// revisions), or at the same number, a digest whose pod started before the current digest's pod does not
// replace it.
func (l *Ledger) Put(ctx context.Context, r record.Record, m Meta) error {
	name := types.NamespacedName{Namespace: l.Namespace, Name: Name(r.Key())}
	// A key the ledger is not known to hold (not listed, not written by this process) is created at once: one
	// call for each new workload container of a burst, instead of a read and then a create.
	createFirst := !l.knows(name.Name)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var dr v1alpha1.DeploymentRecord
		create := func() error {
			dr = v1alpha1.DeploymentRecord{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}
			dr.Spec = spec(r, m, l.now(), nil)
			err := l.Client.Create(ctx, &dr)
			if apierrors.IsAlreadyExists(err) {
				// Written meanwhile (another leader, the previous one's last write): read it, as after a conflict.
				return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("deploymentrecords").GroupResource(), name.Name, err)
			}
			if err != nil {
				return fmt.Errorf("creating ledger record %s: %w", name.Name, err)
			}
			l.learn(name.Name, true)
			return nil
		}
		if createFirst {
			createFirst = false
			return create()
		}
		err := l.Reader.Get(ctx, name, &dr)
		if apierrors.IsNotFound(err) {
			return create()
		}
		if err != nil {
			return fmt.Errorf("reading ledger record %s: %w", name.Name, err)
		}
		cur := dr.Spec
		if err := older(cur, r, m); err != nil {
			return err
		}
		next := spec(r, m, l.now(), &cur)
		if equalSpec(cur, next) {
			return l.refreshSynced(ctx, &dr)
		}
		dr.Spec = next
		err = l.Client.Update(ctx, &dr)
		if apierrors.IsNotFound(err) {
			// Deleted since the read (the retention): read it again and create it, as after a conflict.
			return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("deploymentrecords").GroupResource(), name.Name, err)
		}
		if err != nil {
			return fmt.Errorf("updating ledger record %s: %w", name.Name, err)
		}
		l.learn(name.Name, true)
		return l.refreshSynced(ctx, &dr)
	})
}

// knows reports whether the ledger is known to hold the object name: listed, or written by this process, and
// not deleted by its retention since. Only a hint: Put reads when it is wrong either way.
func (l *Ledger) knows(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known[name]
}

// learn records whether the ledger holds the object name.
func (l *Ledger) learn(name string, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !held {
		delete(l.known, name)
		return
	}
	if l.known == nil {
		l.known = map[string]bool{}
	}
	l.known[name] = true
}

// older returns an ErrOlder error when r, decided with m, is older than the current spec cur.
func older(cur v1alpha1.DeploymentRecordSpec, r record.Record, m Meta) error {
	if r.Status != record.StatusDeployed || cur.Status != v1alpha1.StatusDeployed || cur.Digest == r.Digest || cur.Workload != m.Workload {
		return nil
	}
	if m.Revision > 0 && cur.Revision > 0 && m.Revision != cur.Revision {
		if m.Revision < cur.Revision {
			return fmt.Errorf("%s: %s is revision %d, the current digest's %d: %w", r.DeploymentName, r.Digest, m.Revision, cur.Revision, ErrOlder)
		}
		return nil
	}
	if m.Revision > cur.Revision {
		return nil // the first revision-aware decision after one that was not
	}
	if cur.PodStarted != nil && !m.PodStarted.IsZero() && m.PodStarted.Before(cur.PodStarted.Time) {
		return fmt.Errorf("%s: %s started %s, the current digest's pod %s: %w",
			r.DeploymentName, r.Digest, m.PodStarted.Format(time.RFC3339), cur.PodStarted.Format(time.RFC3339), ErrOlder)
	}
	return nil
}

// refreshSynced brings the Synced condition of dr up to date with its spec, when it is not: a new spec is not
// accepted by any sink yet, and `kubectl get` must not show it synced meanwhile. A record no sink reported on
// has no condition yet, which shows it is not synced; it is not written. A conflict is not an error: the
// status was written since, and every status write computes the condition from the spec it read.
func (l *Ledger) refreshSynced(ctx context.Context, dr *v1alpha1.DeploymentRecord) error {
	if meta.FindStatusCondition(dr.Status.Conditions, v1alpha1.ConditionSynced) == nil {
		return nil
	}
	before := dr.Status.DeepCopy()
	setSynced(dr, l.now())
	if equality.Semantic.DeepEqual(before, &dr.Status) {
		return nil
	}
	if err := l.Client.Status().Update(ctx, dr); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("updating the status of ledger record %s: %w", dr.Name, err)
	}
	return nil
}

// Delivered records that the sink accepted r. r may be a decommission of another digest than the spec's: the
// one the sink held for the key (a workload deleted after its new digest was answered 404) — that decommissions
// the key, which is what a decommissioned spec asks for.
func (l *Ledger) Delivered(ctx context.Context, r record.Record) error {
	return l.status(ctx, r.Key(), l.delivered(r))
}

// statusChange changes the status s of the ledger's sink in dr.
type statusChange func(dr *v1alpha1.DeploymentRecord, s *v1alpha1.SinkStatus)

// delivered is the change of Delivered.
func (l *Ledger) delivered(r record.Record) statusChange {
	return func(dr *v1alpha1.DeploymentRecord, s *v1alpha1.SinkStatus) {
		now := metav1.NewTime(l.now())
		s.Name, s.Digest, s.Version, s.Status = r.Name, r.Digest, r.Version, string(r.Status)
		s.Attempts, s.LastError, s.NextRetry, s.LastSynced, s.NotAttested = 0, "", nil, &now, nil
		if accepts(dr.Spec, r) {
			s.ObservedGeneration = dr.Generation
		}
	}
}

// Failed records a failed post of r: the error, the attempts so far and when the next one is due (zero: not
// retried). A sink that refuses the credentials (a sink.CredentialsError) makes the Synced condition's reason
// CredentialsRefused; a sink whose configuration is wrong (an error with a Misconfigured method, such as the
// GitHub sink's organization check) Misconfigured; a 404 for an artifact without attestation
// (a sink.NotFoundError) NotAttested, and the artifact is remembered in notAttested with next as nextRetry, so
// that a restart does not post it again before then.
func (l *Ledger) Failed(ctx context.Context, r record.Record, postErr error, attempts int, next time.Time) error {
	return l.status(ctx, r.Key(), l.failed(r, postErr, attempts, next))
}

// failed is the change of Failed.
func (l *Ledger) failed(r record.Record, postErr error, attempts int, next time.Time) statusChange {
	return func(_ *v1alpha1.DeploymentRecord, s *v1alpha1.SinkStatus) {
		s.Attempts = int32(min(attempts, 1<<30))
		s.LastError = lastError(postErr, 1024)
		s.NextRetry = nil
		if !next.IsZero() {
			t := metav1.NewTime(next)
			s.NextRetry = &t
		}
		var nf *sink.NotFoundError
		switch {
		case !errors.As(postErr, &nf):
			s.NotAttested = nil
		case s.NotAttested == nil || s.NotAttested.Name != r.Name || s.NotAttested.Digest != r.Digest:
			s.NotAttested = &v1alpha1.NotAttested{Name: r.Name, Digest: r.Digest, Since: metav1.NewTime(l.now().Truncate(time.Second))}
		}
	}
}

// status applies changes, in order, to the status of k's record in one write.
func (l *Ledger) status(ctx context.Context, k record.Key, changes ...statusChange) error {
	name := types.NamespacedName{Namespace: l.Namespace, Name: Name(k)}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var dr v1alpha1.DeploymentRecord
		if err := l.Reader.Get(ctx, name, &dr); err != nil {
			return fmt.Errorf("reading ledger record %s: %w", name.Name, err)
		}
		i := slices.IndexFunc(dr.Status.Sinks, func(s v1alpha1.SinkStatus) bool { return s.Sink == l.Sink })
		if i < 0 {
			dr.Status.Sinks = append(dr.Status.Sinks, v1alpha1.SinkStatus{Sink: l.Sink})
			i = len(dr.Status.Sinks) - 1
		}
		before := dr.Status.DeepCopy()
		for _, change := range changes {
			change(&dr, &dr.Status.Sinks[i])
		}
		setSynced(&dr, l.now())
		if equality.Semantic.DeepEqual(before, &dr.Status) {
			return nil // the same outcome again (a record still waiting for a paused sink): no write
		}
		if err := l.Client.Status().Update(ctx, &dr); err != nil {
			return fmt.Errorf("updating the status of ledger record %s: %w", name.Name, err)
		}
		return nil
	})
}

// List returns every record of the ledger, read in pages (listPages).
func (l *Ledger) List(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := listPages(ctx, l, func(list *v1alpha1.DeploymentRecordList) error {
		for i := range list.Items {
			out = append(out, l.entryOf(&list.Items[i]))
			l.learn(list.Items[i].Name, true)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the ledger: %w", err)
	}
	return out, nil
}

// entryOf is the record dr keeps and what the ledger's sink accepted of it.
func (l *Ledger) entryOf(dr *v1alpha1.DeploymentRecord) Entry {
	e := Entry{Want: recordOf(dr.Spec), Meta: Meta{Workload: dr.Spec.Workload, Container: dr.Spec.Container, Source: dr.Spec.Source,
		Revision: dr.Spec.Revision}}
	if dr.Spec.PodStarted != nil {
		e.Meta.PodStarted = dr.Spec.PodStarted.Time
	}
	for _, s := range dr.Status.Sinks {
		if s.Sink == l.Sink && s.Digest != "" {
			// What the sink holds: the spec's record with the digest, status, and (kept since) the name and
			// version the sink accepted; the decommission of a key goes to that digest.
			have := e.Want
			have.Digest, have.Status = s.Digest, record.Status(s.Status)
			if s.Name != "" {
				have.Name, have.Version = s.Name, s.Version
			}
			e.Have = &have
			e.Synced = s.ObservedGeneration == dr.Generation && accepts(dr.Spec, have)
		}
		if s.Sink == l.Sink && s.NotAttested != nil && s.LastError != "" && s.NextRetry != nil {
			e.NotAttested = &NotAttested{Name: s.NotAttested.Name, Digest: s.NotAttested.Digest, Until: s.NextRetry.Time,
				Message: s.LastError}
		}
	}
	return e
}

// setSynced sets the Synced condition from the sink statuses. A sink has accepted the spec when it accepted its
// generation and holds its digest and status: the generation alone would do on an API server, but a client
// that does not maintain metadata.generation (controller-runtime's fake) would show a new digest synced.
func setSynced(dr *v1alpha1.DeploymentRecord, now time.Time) {
	c := metav1.Condition{Type: v1alpha1.ConditionSynced, Status: metav1.ConditionTrue, Reason: "Accepted",
		Message: "every sink accepted the record", ObservedGeneration: dr.Generation, LastTransitionTime: metav1.NewTime(now)}
	if len(dr.Status.Sinks) == 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Pending", "no sink accepted the record yet"
	}
	for _, s := range dr.Status.Sinks {
		switch {
		case s.LastError != "" && s.NotAttested != nil:
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonNotAttested, s.Sink+": "+notAttestedMessage(s)
		case s.LastError != "":
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, failureReason(s.LastError, "PostFailed"), s.Sink+": "+s.LastError
		case s.ObservedGeneration != dr.Generation || !acceptsStatus(dr.Spec, s.Digest, s.Status):
			if c.Reason == "Accepted" || c.Reason == "Pending" {
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Pending", s.Sink+": not accepted yet"
			}
		}
	}
	meta.SetStatusCondition(&dr.Status.Conditions, c)
	dr.Status.ObservedGeneration = dr.Generation
}

func spec(r record.Record, m Meta, now time.Time, cur *v1alpha1.DeploymentRecordSpec) v1alpha1.DeploymentRecordSpec {
	s := v1alpha1.DeploymentRecordSpec{
		Name: r.Name, Digest: r.Digest, Version: r.Version, Status: string(r.Status),
		LogicalEnvironment: r.LogicalEnvironment, PhysicalEnvironment: r.PhysicalEnvironment, Cluster: r.Cluster,
		DeploymentName: r.DeploymentName, Tags: r.Tags, RuntimeRisks: r.RuntimeRisks, GitHubRepository: r.GitHubRepository,
		Workload: m.Workload, Container: m.Container, FirstSeen: metav1.NewTime(now.Truncate(time.Second)), Source: m.Source,
		Revision: m.Revision,
	}
	if s.Source == "" {
		s.Source = v1alpha1.SourceInformer
	}
	if !m.PodStarted.IsZero() {
		t := metav1.NewTime(m.PodStarted.Truncate(time.Second))
		s.PodStarted = &t
	}
	if cur != nil {
		if cur.Digest == s.Digest {
			s.FirstSeen, s.Source = cur.FirstSeen, cur.Source
		}
		if s.PodStarted == nil || r.Status == record.StatusDecommissioned {
			s.PodStarted = cur.PodStarted
		}
		if r.Status == record.StatusDecommissioned || cur.Digest == s.Digest {
			s.Revision = max(s.Revision, cur.Revision) // the same digest never goes back to an older revision
		}
	}
	return s
}

func recordOf(s v1alpha1.DeploymentRecordSpec) record.Record {
	return record.Record{
		Name: s.Name, Digest: s.Digest, Version: s.Version, Status: record.Status(s.Status),
		LogicalEnvironment: s.LogicalEnvironment, PhysicalEnvironment: s.PhysicalEnvironment, Cluster: s.Cluster,
		DeploymentName: s.DeploymentName, Tags: s.Tags, RuntimeRisks: s.RuntimeRisks, GitHubRepository: s.GitHubRepository,
	}
}

// matches reports whether r is the record s describes.
func matches(s v1alpha1.DeploymentRecordSpec, r record.Record) bool {
	return record.Equal(recordOf(s), r)
}

// accepts reports whether the sink holding r satisfies the spec s: r is the record s describes, or both are
// decommissions of the key. The dispatcher decommissions the digest the sink holds, which is not the spec's
// when the spec's digest was never accepted (a 404): the key is decommissioned all the same.
func accepts(s v1alpha1.DeploymentRecordSpec, r record.Record) bool {
	if s.Status == v1alpha1.StatusDecommissioned && r.Status == record.StatusDecommissioned {
		want := recordOf(s)
		return r.Key() == want.Key()
	}
	return matches(s, r)
}

// acceptsStatus is accepts for the digest and status a sink status keeps.
func acceptsStatus(s v1alpha1.DeploymentRecordSpec, digest, status string) bool {
	if s.Status == v1alpha1.StatusDecommissioned && status == v1alpha1.StatusDecommissioned {
		return true
	}
	return digest == s.Digest && status == s.Status
}

func equalSpec(a, b v1alpha1.DeploymentRecordSpec) bool {
	return record.Equal(recordOf(a), recordOf(b)) && a.Workload == b.Workload && a.Container == b.Container &&
		a.Source == b.Source && a.FirstSeen.Equal(&b.FirstSeen) && a.PodStarted.Equal(b.PodStarted) && a.Revision == b.Revision
}

// ReasonCredentialsRefused is the reason of the Synced and Delivered conditions while a sink refuses the
// tracker's credentials: the record or rollout is kept pending, and delivered once the credentials work again.
const ReasonCredentialsRefused = "CredentialsRefused"

// ReasonNotAttested is the reason of the Synced condition while the sink answers that it has no attestation
// for the record's artifact (GitHub's 404 "no artifacts found"): the record is kept, and posted again at the
// status's nextRetry (-unknown-artifact-ttl after the answer).
const ReasonNotAttested = "NotAttested"

// ReasonMisconfigured is the reason of the Synced condition while the sink's configuration is wrong (the
// GitHub sink: ORG does not exist at BASE_URL, or BASE_URL is not the REST API): the record is kept pending,
// and delivered once the configuration works (after a restart with a fixed ORG or BASE_URL).
const ReasonMisconfigured = "Misconfigured"

// misconfiguredPrefix starts the lastError of a sink whose configuration is wrong, as credentialsPrefix does
// for refused credentials.
const misconfiguredPrefix = "sink misconfigured: "

// misconfiguredError is an error that says whether the sink's configuration, not the record, is wrong (the
// GitHub sink's organization check: github.OrganizationError).
type misconfiguredError interface {
	error
	Misconfigured() bool
}

// misconfigured reports whether err says that the sink's configuration is wrong, and that error.
func misconfigured(err error) (misconfiguredError, bool) {
	var m misconfiguredError
	if errors.As(err, &m) && m.Misconfigured() {
		return m, true
	}
	return nil, false
}

// notAttestedMessage is the condition message of a sink status with notAttested set.
func notAttestedMessage(s v1alpha1.SinkStatus) string {
	msg := "no attestation for " + s.NotAttested.Name + "@" + s.NotAttested.Digest
	if s.NextRetry != nil {
		msg += ", tried again at " + s.NextRetry.UTC().Format(time.RFC3339)
	}
	return msg + " (" + s.LastError + ")"
}

// credentialsPrefix starts the lastError of a sink that refuses the credentials: the text of a
// sink.CredentialsError, which lastError stores unwrapped so that the conditions, computed again on every
// write from the stored status, can tell it from other failures.
const credentialsPrefix = "credentials refused: "

// lastError is the lastError to store for err, cut at n bytes: a sink.CredentialsError's own text (it names
// the sink's request), anything else as it is.
func lastError(err error, n int) string {
	var ce *sink.CredentialsError
	if m, ok := misconfigured(err); ok {
		return truncate(misconfiguredPrefix+m.Error(), n)
	}
	if errors.As(err, &ce) {
		return truncate(ce.Error(), n)
	}
	return truncate(err.Error(), n)
}

// failureReason is the condition reason of a sink status with lastError msg: CredentialsRefused or
// Misconfigured, else other.
func failureReason(msg, other string) string {
	switch {
	case strings.HasPrefix(msg, credentialsPrefix):
		return ReasonCredentialsRefused
	case strings.HasPrefix(msg, misconfiguredPrefix):
		return ReasonMisconfigured
	}
	return other
}

// truncate cuts s to at most n bytes, on a character boundary: the API server stores valid UTF-8 only.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
