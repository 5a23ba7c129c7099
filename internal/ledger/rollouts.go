package ledger

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// The rollout ledger: one RolloutRecord per revision of a workload, in the ledger's namespace. The spec is the
// rollout as the tracker decided it (rollout.Rollout), the status what each rollout sink acknowledged of it and
// the state it keeps about it. Unlike DeploymentRecords, one object serves every rollout sink: the sink is a
// parameter of each status write, and Ledger.Sink is not used.

// Bounds of what the rollout ledger stores, within the CRD's (internal/apis/records/v1alpha1): truncate keeps
// at most n bytes and adds one character, so the cut lengths are one below the schema's maxLength.
const (
	maxReason     = 1023
	maxMessage    = 4095
	maxError      = 1024
	maxStateKeys  = 16
	maxStateKey   = 63
	maxStateValue = 1024
	hashLen       = 24
)

// ErrStateTooLarge is returned by RolloutDelivered when a sink's state exceeds what a RolloutRecord holds (16
// entries, keys of at most 63 characters, values of at most 1024). Retrying does not help.
var ErrStateTooLarge = errors.New("sink state exceeds the rollout ledger's bounds")

// RolloutEntry is one rollout of the ledger.
type RolloutEntry struct {
	// Rollout is the rollout as the tracker decided it last (spec).
	Rollout rollout.Rollout
	// Sinks is what each sink that reported on the rollout acknowledged, by sink name.
	Sinks map[string]RolloutDelivery
}

// RolloutDelivery is what one sink acknowledged of a rollout.
type RolloutDelivery struct {
	// Phase is the phase the sink acknowledged last ("" when it never acknowledged one).
	Phase rollout.Phase
	// Synced reports that the sink acknowledged the current spec.
	Synced bool
	// State is what the sink returned with its last acknowledgement.
	State map[string]string
	// LastError is the last failure, if the current spec is not acknowledged yet.
	LastError string
}

// RolloutName is the object name of the rollout of revision of w: the workload's parts can hold any character
// and any length, so the name is a hash of them.
func RolloutName(w v1alpha1.Workload, revision int64) string {
	return "ro-" + nameHash(w.Group, w.Kind, w.Namespace, w.Name, strconv.FormatInt(revision, 10))
}

// workloadHash is the value of the label v1alpha1.LabelWorkload of w's rollouts.
func workloadHash(w v1alpha1.Workload) string {
	return nameHash(w.Group, w.Kind, w.Namespace, w.Name)
}

// nameHash is the first 24 hex digits of the SHA-256 of parts, each terminated by a NUL byte so that moving a
// boundary changes the hash.
func nameHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen]
}

// PutRollout makes r the spec of the RolloutRecord of its workload and revision, creating it if needed. An
// unchanged spec is not written. A zero r.Started keeps the recorded one (the time of creation for a new
// record): the schema requires it.
func (l *Ledger) PutRollout(ctx context.Context, r rollout.Rollout) error {
	w := apiWorkload(r.Workload)
	name := types.NamespacedName{Namespace: l.Namespace, Name: RolloutName(w, r.Revision)}
	label := workloadHash(w)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var rr v1alpha1.RolloutRecord
		err := l.Reader.Get(ctx, name, &rr)
		if apierrors.IsNotFound(err) {
			rr = v1alpha1.RolloutRecord{
				ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name, Labels: map[string]string{v1alpha1.LabelWorkload: label}},
				Spec:       rolloutSpec(r, l.now(), nil),
			}
			err := l.Client.Create(ctx, &rr)
			if apierrors.IsAlreadyExists(err) {
				// Created since the read: read it again and update it, as after a conflict.
				return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("rolloutrecords").GroupResource(), name.Name, err)
			}
			if err != nil {
				return fmt.Errorf("creating rollout record %s: %w", name.Name, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading rollout record %s: %w", name.Name, err)
		}
		next := rolloutSpec(r, l.now(), &rr.Spec)
		if equality.Semantic.DeepEqual(rr.Spec, next) && rr.Labels[v1alpha1.LabelWorkload] == label {
			return l.refreshDelivered(ctx, &rr)
		}
		rr.Spec = next
		if rr.Labels == nil {
			rr.Labels = map[string]string{}
		}
		rr.Labels[v1alpha1.LabelWorkload] = label
		if err := l.Client.Update(ctx, &rr); err != nil {
			return fmt.Errorf("updating rollout record %s: %w", name.Name, err)
		}
		return l.refreshDelivered(ctx, &rr)
	})
}

// refreshDelivered brings the Delivered condition of rr up to date with its spec, as refreshSynced does for
// DeploymentRecords: a new spec is not acknowledged by any sink yet. A rollout no sink reported on has no
// condition, and is not written; a conflict is not an error (the status was written since).
func (l *Ledger) refreshDelivered(ctx context.Context, rr *v1alpha1.RolloutRecord) error {
	if meta.FindStatusCondition(rr.Status.Conditions, v1alpha1.ConditionDelivered) == nil {
		return nil
	}
	before := rr.Status.DeepCopy()
	setDelivered(rr, l.now())
	if equality.Semantic.DeepEqual(before, &rr.Status) {
		return nil
	}
	if err := l.Client.Status().Update(ctx, rr); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("updating the status of rollout record %s: %w", rr.Name, err)
	}
	return nil
}

// RolloutDelivered records that sink acknowledged r, and the state it keeps about it: nil keeps the state
// recorded before, any other map (empty too) replaces it. When the spec moved on since r was taken, the phase
// and the state are recorded but not the generation: the newer spec stays pending for the sink. A rollout that
// is not in the ledger (pruned meanwhile) is not an error.
func (l *Ledger) RolloutDelivered(ctx context.Context, r rollout.Rollout, sink string, state map[string]string) error {
	if err := checkState(state); err != nil {
		return fmt.Errorf("state of sink %s for %s revision %d: %w", sink, r.Workload, r.Revision, err)
	}
	return l.rolloutStatus(ctx, r, sink, func(rr *v1alpha1.RolloutRecord, s *v1alpha1.RolloutSinkStatus) {
		now := metav1.NewTime(l.now())
		s.Phase = string(r.Phase)
		if state != nil {
			s.State = maps.Clone(state)
		}
		s.Attempts, s.LastError, s.NextRetry, s.LastDelivered = 0, "", nil, &now
		if rolloutMatches(rr.Spec, r) {
			s.ObservedGeneration = rr.Generation
		}
	})
}

// RolloutFailed records a failed delivery of r to sink: the error, the attempts so far and when the next one
// is due (zero: not retried). What the sink acknowledged before stays. A sink that refuses the credentials (a
// sink.CredentialsError) makes the Delivered condition's reason CredentialsRefused. A rollout that is not in
// the ledger (pruned meanwhile) is not an error.
func (l *Ledger) RolloutFailed(ctx context.Context, r rollout.Rollout, sink string, postErr error, attempts int, next time.Time) error {
	return l.rolloutStatus(ctx, r, sink, func(_ *v1alpha1.RolloutRecord, s *v1alpha1.RolloutSinkStatus) {
		s.Attempts = int32(min(attempts, 1<<30))
		s.LastError = lastError(postErr, maxError)
		s.NextRetry = nil
		if !next.IsZero() {
			t := metav1.NewTime(next)
			s.NextRetry = &t
		}
	})
}

func (l *Ledger) rolloutStatus(ctx context.Context, r rollout.Rollout, sink string, change func(*v1alpha1.RolloutRecord, *v1alpha1.RolloutSinkStatus)) error {
	name := types.NamespacedName{Namespace: l.Namespace, Name: RolloutName(apiWorkload(r.Workload), r.Revision)}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var rr v1alpha1.RolloutRecord
		err := l.Reader.Get(ctx, name, &rr)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading rollout record %s: %w", name.Name, err)
		}
		i := slices.IndexFunc(rr.Status.Sinks, func(s v1alpha1.RolloutSinkStatus) bool { return s.Sink == sink })
		if i < 0 {
			rr.Status.Sinks = append(rr.Status.Sinks, v1alpha1.RolloutSinkStatus{Sink: sink})
			i = len(rr.Status.Sinks) - 1
		}
		change(&rr, &rr.Status.Sinks[i])
		setDelivered(&rr, l.now())
		err = l.Client.Status().Update(ctx, &rr)
		if apierrors.IsNotFound(err) {
			return nil // pruned since the read
		}
		if err != nil {
			return fmt.Errorf("updating the status of rollout record %s: %w", name.Name, err)
		}
		return nil
	})
}

// ListRollouts returns every rollout of the ledger, read in pages (listPages).
func (l *Ledger) ListRollouts(ctx context.Context) ([]RolloutEntry, error) {
	var out []RolloutEntry
	err := listPages(ctx, l, func(list *v1alpha1.RolloutRecordList) error {
		for i := range list.Items {
			out = append(out, entryOf(&list.Items[i]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the rollout ledger: %w", err)
	}
	return out, nil
}

// WorkloadRollouts returns the rollouts of w the ledger keeps, by ascending revision: one List selecting the
// label of w's records (v1alpha1.LabelWorkload), for a sink that reads a workload's history (the delivery
// sink's time to restore).
func (l *Ledger) WorkloadRollouts(ctx context.Context, w owner.Workload) ([]RolloutEntry, error) {
	aw := apiWorkload(w)
	var out []RolloutEntry
	err := listPages(ctx, l, func(list *v1alpha1.RolloutRecordList) error {
		for i := range list.Items {
			if rr := &list.Items[i]; rr.Spec.Workload == aw { // a label edited by hand names another workload
				out = append(out, entryOf(rr))
			}
		}
		return nil
	}, client.MatchingLabels{v1alpha1.LabelWorkload: workloadHash(aw)})
	if err != nil {
		return nil, fmt.Errorf("listing the rollouts of %s in the ledger: %w", w, err)
	}
	slices.SortFunc(out, func(a, b RolloutEntry) int { return cmp.Compare(a.Rollout.Revision, b.Rollout.Revision) })
	return out, nil
}

// entryOf is the rollout rr keeps and what each sink acknowledged of it.
func entryOf(rr *v1alpha1.RolloutRecord) RolloutEntry {
	e := RolloutEntry{Rollout: rolloutOf(rr.Spec)}
	for _, s := range rr.Status.Sinks {
		if e.Sinks == nil {
			e.Sinks = make(map[string]RolloutDelivery, len(rr.Status.Sinks))
		}
		e.Sinks[s.Sink] = RolloutDelivery{Phase: rollout.Phase(s.Phase), Synced: acknowledged(rr, s), State: s.State, LastError: s.LastError}
	}
	return e
}

// PruneRollouts applies the retention of the rollout ledger and returns how many records it deleted. Per
// workload, the keep highest revisions stay (keep < 1: no limit by count); an older one goes when its phase is
// final, Current or Failed (an older revision still InProgress stays). Independently, a rollout in a final
// phase that finished (or, without a finish time, started) more than maxAge ago goes (maxAge <= 0: no limit by
// age). The highest revision of a workload is its history's anchor and never goes, unless the workload was
// Deleted more than maxAge ago. Each delete is conditional on the object being unchanged since the listing: a
// record written meanwhile (or already gone) is left to the next pruning.
func (l *Ledger) PruneRollouts(ctx context.Context, keep int, maxAge time.Duration) (deleted int, err error) {
	// The decision ranks every rollout of a workload, so all pages are read first; each page is a fresh list
	// that the pointers below keep.
	byWorkload := map[v1alpha1.Workload][]*v1alpha1.RolloutRecord{}
	err = listPages(ctx, l, func(list *v1alpha1.RolloutRecordList) error {
		for i := range list.Items {
			rr := &list.Items[i]
			byWorkload[rr.Spec.Workload] = append(byWorkload[rr.Spec.Workload], rr)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("listing the rollout ledger: %w", err)
	}
	now := l.now()
	var doomed []*v1alpha1.RolloutRecord
	for _, rrs := range byWorkload {
		slices.SortFunc(rrs, func(a, b *v1alpha1.RolloutRecord) int { return cmp.Compare(b.Spec.Revision, a.Spec.Revision) })
		for rank, rr := range rrs {
			if prunable(rank, rr.Spec, keep, maxAge, now) {
				doomed = append(doomed, rr)
			}
		}
	}
	slices.SortFunc(doomed, func(a, b *v1alpha1.RolloutRecord) int { return cmp.Compare(a.Name, b.Name) })
	var errs []error
	for _, rr := range doomed {
		uid, rv := rr.UID, rr.ResourceVersion
		err := l.Client.Delete(ctx, rr, client.Preconditions{UID: &uid, ResourceVersion: &rv})
		switch {
		case err == nil:
			deleted++
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone already, or written since the listing: the next pruning decides again.
		default:
			errs = append(errs, fmt.Errorf("deleting rollout record %s: %w", rr.Name, err))
		}
	}
	return deleted, errors.Join(errs...)
}

// prunable is the retention decision for the rollout s, at rank among its workload's rollouts by revision
// (0: the highest).
func prunable(rank int, s v1alpha1.RolloutRecordSpec, keep int, maxAge time.Duration, now time.Time) bool {
	phase := rollout.Phase(s.Phase)
	end := s.Started.Time
	if s.Finished != nil {
		end = s.Finished.Time
	}
	expired := maxAge > 0 && phase.Final() && now.Sub(end) > maxAge
	if rank == 0 {
		return expired && phase == rollout.PhaseDeleted
	}
	return expired || keep > 0 && rank >= keep && phase != rollout.PhaseInProgress
}

// setDelivered sets the Delivered condition from the sink statuses. As setSynced, it does not rely on the
// generation alone: a client that does not maintain metadata.generation (controller-runtime's fake) would show
// a new phase delivered.
func setDelivered(rr *v1alpha1.RolloutRecord, now time.Time) {
	c := metav1.Condition{Type: v1alpha1.ConditionDelivered, Status: metav1.ConditionTrue, Reason: "Acknowledged",
		Message: "every sink acknowledged the rollout", ObservedGeneration: rr.Generation, LastTransitionTime: metav1.NewTime(now)}
	if len(rr.Status.Sinks) == 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Pending", "no sink acknowledged the rollout yet"
	}
	for _, s := range rr.Status.Sinks {
		switch {
		case s.LastError != "":
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, failureReason(s.LastError, "DeliveryFailed"), s.Sink+": "+s.LastError
		case !acknowledged(rr, s):
			if c.Reason != "DeliveryFailed" && c.Reason != ReasonCredentialsRefused {
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Pending", s.Sink+": not acknowledged yet"
			}
		}
	}
	meta.SetStatusCondition(&rr.Status.Conditions, c)
	rr.Status.ObservedGeneration = rr.Generation
}

// acknowledged reports whether the sink of s acknowledged the current spec of rr.
func acknowledged(rr *v1alpha1.RolloutRecord, s v1alpha1.RolloutSinkStatus) bool {
	return s.ObservedGeneration == rr.Generation && s.Phase == rr.Spec.Phase
}

// rolloutMatches reports whether r is the rollout s describes: a delivered snapshot of it, not an older one.
func rolloutMatches(s v1alpha1.RolloutRecordSpec, r rollout.Rollout) bool {
	return equality.Semantic.DeepEqual(s, rolloutSpec(r, time.Time{}, &s))
}

// checkState checks state against the schema's bounds of status.sinks[].state (characters, as the API server
// counts them).
func checkState(state map[string]string) error {
	if len(state) > maxStateKeys {
		return fmt.Errorf("%d entries, at most %d: %w", len(state), maxStateKeys, ErrStateTooLarge)
	}
	for k, v := range state {
		if n := utf8.RuneCountInString(k); n > maxStateKey {
			return fmt.Errorf("key %.20q… of %d characters, at most %d: %w", k, n, maxStateKey, ErrStateTooLarge)
		}
		if n := utf8.RuneCountInString(v); n > maxStateValue {
			return fmt.Errorf("value of %q of %d characters, at most %d: %w", k, n, maxStateValue, ErrStateTooLarge)
		}
	}
	return nil
}

// rolloutSpec is the spec of r, its times cut to seconds (what the API stores) and zero times unset. A zero
// Started is taken from cur, or is now for a new record.
func rolloutSpec(r rollout.Rollout, now time.Time, cur *v1alpha1.RolloutRecordSpec) v1alpha1.RolloutRecordSpec {
	s := v1alpha1.RolloutRecordSpec{
		Workload: apiWorkload(r.Workload), Revision: r.Revision, RevisionKey: r.RevisionKey,
		Containers: make([]v1alpha1.RolloutContainer, 0, len(r.Containers)),
		Phase:      string(r.Phase), Reason: truncate(r.Reason, maxReason), Message: truncate(r.Message, maxMessage),
		Restores: r.Restores, Adopted: r.Adopted,
		Started:   metav1.NewTime(r.Started.Truncate(time.Second)),
		Submitted: timeOrNil(r.Submitted), SubmittedBy: r.SubmittedBy, FirstRunning: timeOrNil(r.FirstRunning),
		Completed: timeOrNil(r.Completed), Finished: timeOrNil(r.Finished),
		Ready: r.Ready, Desired: r.Desired,
	}
	for _, c := range r.Containers {
		s.Containers = append(s.Containers, v1alpha1.RolloutContainer{Name: c.Name, Image: c.Image, Digest: c.Digest, Init: c.Init})
	}
	if r.Started.IsZero() {
		if cur != nil {
			s.Started = cur.Started
		} else {
			s.Started = metav1.NewTime(now.Truncate(time.Second))
		}
	}
	return s
}

// rolloutOf is the rollout s describes; unset times are zero.
func rolloutOf(s v1alpha1.RolloutRecordSpec) rollout.Rollout {
	r := rollout.Rollout{
		Workload: owner.Workload{Group: s.Workload.Group, Kind: s.Workload.Kind, Namespace: s.Workload.Namespace, Name: s.Workload.Name},
		Revision: s.Revision, RevisionKey: s.RevisionKey, Phase: rollout.Phase(s.Phase), Reason: s.Reason, Message: s.Message,
		Restores: s.Restores, Adopted: s.Adopted, Started: s.Started.Time, Submitted: timeOf(s.Submitted),
		SubmittedBy: s.SubmittedBy, FirstRunning: timeOf(s.FirstRunning), Completed: timeOf(s.Completed),
		Finished: timeOf(s.Finished), Ready: s.Ready, Desired: s.Desired,
	}
	for _, c := range s.Containers {
		r.Containers = append(r.Containers, rollout.Container{Name: c.Name, Image: c.Image, Digest: c.Digest, Init: c.Init})
	}
	return r
}

func apiWorkload(w owner.Workload) v1alpha1.Workload {
	return v1alpha1.Workload{Group: w.Group, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
