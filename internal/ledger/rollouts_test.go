package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// The rollout ledger is tested like the record ledger (ledger_test.go): against controller-runtime's fake
// client, with rolloutServer adding the API server's part for RolloutRecords: metadata.generation, the CRD's
// schema (deploy/05-crd.yaml), the UID precondition of deletes, and failures of the next calls.

var (
	rolloutGR = schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "rolloutrecords"}
	webDeploy = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
	apiDeploy = v1alpha1.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
)

// ro is revision rev of the Deployment web in phase, started rev minutes after t0.
func ro(rev int64, phase rollout.Phase) rollout.Rollout {
	return rollout.Rollout{
		Workload: webDeploy, Revision: rev, RevisionKey: fmt.Sprintf("5d8f7c6b%d", rev),
		Containers: []rollout.Container{{Name: "app", Image: "ghcr.io/octo-org/web:1.4.2", Digest: dA}},
		Phase:      phase, Started: t0.Add(time.Duration(rev) * time.Minute), Ready: 1, Desired: 3,
	}
}

// with returns r changed by f.
func with(r rollout.Rollout, f func(*rollout.Rollout)) rollout.Rollout {
	r.Containers = slices.Clone(r.Containers)
	f(&r)
	return r
}

// rolloutServer is the fake client with the API server's part for RolloutRecords.
type rolloutServer struct {
	client.Client
	generations bool

	pager pager // List pages as the API server does

	mu       sync.Mutex
	failures map[string][]error // operation (get, list, create, update, status, delete) → errors of its next calls
	writes   int                // successful creates, updates, status updates and deletes
	deletes  []metav1.Preconditions
}

func newRolloutServer(t *testing.T, generations bool, objs ...client.Object) *rolloutServer {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatalf("AddToScheme() error = %v", err)
	}
	s := &rolloutServer{generations: generations, failures: map[string][]error{}}
	s.Client = fake.NewClientBuilder().
		WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.DeploymentRecord{}, &v1alpha1.RolloutRecord{}).
		WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if err := s.failure("get"); err != nil {
					return err
				}
				return c.Get(ctx, key, obj, opts...)
			},
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if err := s.failure("list"); err != nil {
					return err
				}
				return s.pager.list(ctx, c, list, opts...)
			},
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := s.failure("create"); err != nil {
					return err
				}
				if err := validateRollout(obj); err != nil {
					return err
				}
				if s.generations {
					obj.SetGeneration(1)
				}
				return s.wrote(c.Create(ctx, obj, opts...))
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if err := s.failure("update"); err != nil {
					return err
				}
				if err := validateRollout(obj); err != nil {
					return err
				}
				if rr, ok := obj.(*v1alpha1.RolloutRecord); ok && s.generations {
					var cur v1alpha1.RolloutRecord
					if err := c.Get(ctx, client.ObjectKeyFromObject(rr), &cur); err != nil {
						return err
					}
					rr.Generation = cur.Generation
					if !equality.Semantic.DeepEqual(cur.Spec, rr.Spec) {
						rr.Generation++
					}
				}
				return s.wrote(c.Update(ctx, obj, opts...))
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				if err := s.failure("status"); err != nil {
					return err
				}
				if err := validateRollout(obj); err != nil {
					return err
				}
				return s.wrote(c.SubResource(sub).Update(ctx, obj, opts...))
			},
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				var do client.DeleteOptions
				do.ApplyOptions(opts)
				if do.Preconditions != nil {
					s.mu.Lock()
					s.deletes = append(s.deletes, *do.Preconditions)
					s.mu.Unlock()
				}
				if err := s.failure("delete"); err != nil {
					return err
				}
				// The fake checks the resourceVersion precondition, not the UID one.
				if do.Preconditions != nil && do.Preconditions.UID != nil {
					cur := obj.DeepCopyObject().(client.Object)
					if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
						return err
					}
					if cur.GetUID() != *do.Preconditions.UID {
						return apierrors.NewConflict(rolloutGR, obj.GetName(), errors.New("the UID in the precondition does not match"))
					}
				}
				return s.wrote(c.Delete(ctx, obj, opts...))
			},
		}).
		Build()
	return s
}

func (s *rolloutServer) failNext(op string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[op] = append(s.failures[op], errs...)
}

func (s *rolloutServer) failure(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures[op]) == 0 {
		return nil
	}
	err := s.failures[op][0]
	s.failures[op] = s.failures[op][1:]
	return err
}

func (s *rolloutServer) wrote(err error) error {
	if err == nil {
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
	return err
}

func (s *rolloutServer) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

var (
	rolloutPhases = []string{"InProgress", "Current", "Failed", "RolledBack", "Superseded", "Deleted"}
	submitters    = []string{"", v1alpha1.SourceWebhook, v1alpha1.SourceInformer}
	ociDigest     = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

// validateRollout rejects what the RolloutRecord CRD's schema rejects, as the API server does (422 Invalid).
// Lengths are counted in characters, as the API server counts them.
func validateRollout(obj client.Object) error {
	rr, ok := obj.(*v1alpha1.RolloutRecord)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	tooLong := func(p *field.Path, v string, n int) {
		if utf8.RuneCountInString(v) > n {
			errs = append(errs, field.TooLong(p, "", n))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(rr.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), rr.Name, msg))
	}
	spec := field.NewPath("spec")
	for _, p := range []struct{ name, v string }{{"kind", rr.Spec.Workload.Kind}, {"namespace", rr.Spec.Workload.Namespace}, {"name", rr.Spec.Workload.Name}} {
		if p.v == "" {
			errs = append(errs, field.Required(spec.Child("workload", p.name), ""))
		}
	}
	if rr.Spec.Containers == nil {
		errs = append(errs, field.Required(spec.Child("containers"), "")) // null is not a list
	}
	for i, c := range rr.Spec.Containers {
		p := spec.Child("containers").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if c.Digest != "" && !ociDigest.MatchString(c.Digest) {
			errs = append(errs, field.Invalid(p.Child("digest"), c.Digest, "must match "+ociDigest.String()))
		}
	}
	if !slices.Contains(rolloutPhases, rr.Spec.Phase) {
		errs = append(errs, field.NotSupported(spec.Child("phase"), rr.Spec.Phase, rolloutPhases))
	}
	if !slices.Contains(submitters, rr.Spec.SubmittedBy) {
		errs = append(errs, field.NotSupported(spec.Child("submittedBy"), rr.Spec.SubmittedBy, submitters))
	}
	tooLong(spec.Child("reason"), rr.Spec.Reason, 1024)
	tooLong(spec.Child("message"), rr.Spec.Message, 4096)
	if rr.Spec.Started.IsZero() {
		errs = append(errs, field.Required(spec.Child("started"), ""))
	}
	for i, c := range rr.Status.Conditions {
		p := field.NewPath("status", "conditions").Index(i)
		if !conditionReason.MatchString(c.Reason) {
			errs = append(errs, field.Invalid(p.Child("reason"), c.Reason, "must match "+conditionReason.String()))
		}
		if !slices.Contains(conditionStatuses, c.Status) {
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, conditionStatuses))
		}
		if c.LastTransitionTime.IsZero() {
			errs = append(errs, field.Required(p.Child("lastTransitionTime"), ""))
		}
		tooLong(p.Child("message"), c.Message, 32768)
	}
	if len(rr.Status.Sinks) > 16 {
		errs = append(errs, field.TooMany(field.NewPath("status", "sinks"), len(rr.Status.Sinks), 16))
	}
	for i, s := range rr.Status.Sinks {
		p := field.NewPath("status", "sinks").Index(i)
		if s.Sink == "" {
			errs = append(errs, field.Required(p.Child("sink"), ""))
		}
		if s.Phase != "" && !slices.Contains(rolloutPhases, s.Phase) {
			errs = append(errs, field.NotSupported(p.Child("phase"), s.Phase, rolloutPhases))
		}
		tooLong(p.Child("lastError"), s.LastError, 2048)
		if len(s.State) > 16 {
			errs = append(errs, field.TooMany(p.Child("state"), len(s.State), 16))
		}
		for k, v := range s.State {
			tooLong(p.Child("state").Key(k), k, 63)
			tooLong(p.Child("state").Key(k), v, 1024)
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("RolloutRecord").GroupKind(), rr.Name, errs)
	}
	return nil
}

func newRolloutLedger(s *rolloutServer, c *clock) *Ledger {
	return &Ledger{Client: s, Reader: s, Namespace: namespace, Sink: SinkGitHub, Now: c.now}
}

// getRollout reads the ledger's object of r's workload and revision.
func getRollout(t *testing.T, s *rolloutServer, r rollout.Rollout) *v1alpha1.RolloutRecord {
	t.Helper()
	var rr v1alpha1.RolloutRecord
	if err := s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: RolloutName(apiWorkload(r.Workload), r.Revision)}, &rr); err != nil {
		t.Fatalf("reading the rollout record of revision %d: %v", r.Revision, err)
	}
	return &rr
}

func putRollout(at time.Time, r rollout.Rollout) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.PutRollout(ctx, r) }}
}

func rolloutDelivered(at time.Time, r rollout.Rollout, sink string, state map[string]string) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.RolloutDelivered(ctx, r, sink, state) }}
}

func rolloutFailed(at time.Time, r rollout.Rollout, sink string, err error, attempts int, next time.Time) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.RolloutFailed(ctx, r, sink, err, attempts, next) }}
}

// instants compares times as instants: objects read back from the fake client carry the local time zone.
var instants = cmp.Options{timeEqual, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })}

func deliveredCondition(rr *v1alpha1.RolloutRecord) *condition {
	c := apimeta.FindStatusCondition(rr.Status.Conditions, v1alpha1.ConditionDelivered)
	if c == nil {
		return nil
	}
	return &condition{Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: c.ObservedGeneration}
}

func acknowledgedBy(gen int64) *condition {
	return &condition{Status: metav1.ConditionTrue, Reason: "Acknowledged", Message: "every sink acknowledged the rollout", ObservedGeneration: gen}
}

func pendingAt(gen int64, sink string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: "Pending", Message: sink + ": not acknowledged yet", ObservedGeneration: gen}
}

func rolloutCredentialsRefused(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: ReasonCredentialsRefused, Message: msg, ObservedGeneration: gen}
}

func deliveryFailed(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: "DeliveryFailed", Message: msg, ObservedGeneration: gen}
}

// wantRolloutSpec is the spec PutRollout writes for r (whose times are whole seconds).
func wantRolloutSpec(r rollout.Rollout) v1alpha1.RolloutRecordSpec {
	s := v1alpha1.RolloutRecordSpec{
		Workload: apiWorkload(r.Workload), Revision: r.Revision, RevisionKey: r.RevisionKey, Phase: string(r.Phase),
		Reason: r.Reason, Message: r.Message, Restores: r.Restores, Adopted: r.Adopted, Started: metav1.NewTime(r.Started),
		SubmittedBy: r.SubmittedBy, Ready: r.Ready, Desired: r.Desired, Containers: []v1alpha1.RolloutContainer{},
	}
	for _, c := range r.Containers {
		s.Containers = append(s.Containers, v1alpha1.RolloutContainer{Name: c.Name, Image: c.Image, Digest: c.Digest})
	}
	for _, p := range []struct {
		dst **metav1.Time
		t   time.Time
	}{{&s.Submitted, r.Submitted}, {&s.FirstRunning, r.FirstRunning}, {&s.Completed, r.Completed}, {&s.Finished, r.Finished}} {
		if !p.t.IsZero() {
			*p.dst = ptrTime(p.t)
		}
	}
	return s
}

// full is a rollout with every field set, its times with sub-second parts.
var full = rollout.Rollout{
	Workload: owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "checkout"}, Revision: 7,
	RevisionKey: "6c9f8d7b5",
	Containers: []rollout.Container{
		{Name: "migrate", Image: "ghcr.io/octo-org/migrate:2.0", Digest: dB},
		{Name: "app", Image: "ghcr.io/octo-org/checkout:2.0", Digest: dA},
		{Name: "sidecar", Image: "ghcr.io/octo-org/proxy:1"},
	},
	Phase: rollout.PhaseCurrent, Reason: "Current", Message: "Rollout is available. Replicas: 3", Restores: 5, Adopted: true,
	Started: t0.Add(1500 * time.Millisecond), Submitted: t0.Add(2900 * time.Millisecond), SubmittedBy: v1alpha1.SourceWebhook,
	FirstRunning: t0.Add(10 * time.Second), Completed: t0.Add(time.Minute + 999*time.Millisecond), Finished: t0.Add(2 * time.Minute),
	Ready: 3, Desired: 3,
}

// seconds is r with its times cut to whole seconds, as the ledger keeps them.
func seconds(r rollout.Rollout) rollout.Rollout {
	for _, t := range []*time.Time{&r.Started, &r.Submitted, &r.FirstRunning, &r.Completed, &r.Finished} {
		*t = t.Truncate(time.Second)
	}
	return r
}

func TestRolloutName(t *testing.T) {
	w := func(parts ...string) v1alpha1.Workload {
		return v1alpha1.Workload{Group: parts[0], Kind: parts[1], Namespace: parts[2], Name: parts[3]}
	}
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name       string
		a, b       v1alpha1.Workload
		revA, revB int64
	}{
		{name: "revision", a: apiDeploy, b: apiDeploy, revA: 1, revB: 2},
		{name: "revision digits move into the name", a: w("apps", "Deployment", "shop", "web1"), b: w("apps", "Deployment", "shop", "web"), revA: 2, revB: 12},
		{name: "group", a: w("apps", "Deployment", "shop", "web"), b: w("argoproj.io", "Deployment", "shop", "web"), revA: 1, revB: 1},
		{name: "kind", a: w("apps", "StatefulSet", "shop", "web"), b: w("apps", "DaemonSet", "shop", "web"), revA: 1, revB: 1},
		{name: "boundary shifted", a: w("apps", "Deployment", "shop-a", "pi"), b: w("apps", "Deployment", "shop", "a-pi"), revA: 1, revB: 1},
		{name: "namespace and name swapped", a: w("apps", "Deployment", "web", "shop"), b: w("apps", "Deployment", "shop", "web"), revA: 1, revB: 1},
		{name: "long parts", a: w(long, long, long, long+"a"), b: w(long, long, long, long+"b"), revA: 1, revB: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := RolloutName(tt.a, tt.revA), RolloutName(tt.b, tt.revB)
			if a == b {
				t.Errorf("RolloutName(%+v, %d) = RolloutName(%+v, %d) = %s, want distinct names", tt.a, tt.revA, tt.b, tt.revB, a)
			}
			for _, n := range []string{a, b} {
				if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
					t.Errorf("RolloutName() = %q is not a valid object name: %v", n, errs)
				}
			}
			if again := RolloutName(tt.a, tt.revA); again != a {
				t.Errorf("RolloutName() not stable: %s, then %s", a, again)
			}
		})
	}
	// The names of existing ledgers depend on the scheme: changing it orphans every rollout.
	if got, want := RolloutName(apiDeploy, 3), "ro-47c95906535ee11cf9fb7ca8"; got != want {
		t.Errorf("RolloutName(%+v, 3) = %s, want %s", apiDeploy, got, want)
	}
	if h := workloadHash(apiDeploy); len(h) != 24 || len(validation.IsValidLabelValue(h)) > 0 {
		t.Errorf("workloadHash() = %q, want 24 hex digits, a valid label value", h)
	}
}

func TestPutRollout(t *testing.T) {
	later := t1.Add(time.Hour)
	r1 := ro(1, rollout.PhaseInProgress)
	current := with(r1, func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Ready, r.Completed = rollout.PhaseCurrent, "Current", 3, t1
	})
	long := strings.Repeat("é", 3000) // 6000 bytes
	tests := []struct {
		name           string
		before         []op
		put            op
		wantWrite      bool
		want           v1alpha1.RolloutRecordSpec
		wantGeneration int64
	}{
		{
			name:           "creates",
			put:            putRollout(t1, r1),
			wantWrite:      true,
			want:           wantRolloutSpec(r1),
			wantGeneration: 1,
		},
		{
			name:           "creates with every field, times cut to seconds",
			put:            putRollout(t1, full),
			wantWrite:      true,
			want:           wantRolloutSpec(seconds(full)),
			wantGeneration: 1,
		},
		{
			name:           "creates without containers: an empty list",
			put:            putRollout(t1, with(r1, func(r *rollout.Rollout) { r.Containers = nil })),
			wantWrite:      true,
			want:           wantRolloutSpec(with(r1, func(r *rollout.Rollout) { r.Containers = nil })),
			wantGeneration: 1,
		},
		{
			name:           "creates without a start: now",
			put:            putRollout(t1, with(r1, func(r *rollout.Rollout) { r.Started = time.Time{} })),
			wantWrite:      true,
			want:           wantRolloutSpec(with(r1, func(r *rollout.Rollout) { r.Started = t1 })),
			wantGeneration: 1,
		},
		{
			name:           "equal rollout, later: no write",
			before:         []op{putRollout(t1, r1)},
			put:            putRollout(later, r1),
			want:           wantRolloutSpec(r1),
			wantGeneration: 1,
		},
		{
			name:           "equal but for sub-second times: no write",
			before:         []op{putRollout(t1, full)},
			put:            putRollout(later, seconds(full)),
			want:           wantRolloutSpec(seconds(full)),
			wantGeneration: 1,
		},
		{
			name:           "without a start: the recorded one kept, no write",
			before:         []op{putRollout(t1, r1)},
			put:            putRollout(later, with(r1, func(r *rollout.Rollout) { r.Started = time.Time{} })),
			want:           wantRolloutSpec(r1),
			wantGeneration: 1,
		},
		{
			name:           "new phase: updated",
			before:         []op{putRollout(t1, r1)},
			put:            putRollout(later, current),
			wantWrite:      true,
			want:           wantRolloutSpec(current),
			wantGeneration: 2,
		},
		{
			name:           "new digest of a container: updated",
			before:         []op{putRollout(t1, r1)},
			put:            putRollout(later, with(r1, func(r *rollout.Rollout) { r.Containers[0].Digest = dB })),
			wantWrite:      true,
			want:           wantRolloutSpec(with(r1, func(r *rollout.Rollout) { r.Containers[0].Digest = dB })),
			wantGeneration: 2,
		},
		{
			name:           "a time unset again: updated",
			before:         []op{putRollout(t1, current)},
			put:            putRollout(later, with(current, func(r *rollout.Rollout) { r.Completed = time.Time{} })),
			wantWrite:      true,
			want:           wantRolloutSpec(with(current, func(r *rollout.Rollout) { r.Completed = time.Time{} })),
			wantGeneration: 2,
		},
		{
			name:      "long reason and message: cut on a character boundary",
			put:       putRollout(t1, with(r1, func(r *rollout.Rollout) { r.Reason, r.Message = long, long })),
			wantWrite: true,
			want: wantRolloutSpec(with(r1, func(r *rollout.Rollout) {
				r.Reason, r.Message = long[:1022]+"…", long[:4094]+"…"
			})),
			wantGeneration: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true)
			c := &clock{}
			l := newRolloutLedger(s, c)
			apply(t, l, c, tt.before)
			writes := s.writeCount()

			apply(t, l, c, []op{tt.put})
			var list v1alpha1.RolloutRecordList
			if err := s.List(t.Context(), &list); err != nil || len(list.Items) != 1 {
				t.Fatalf("List() = %d objects, %v; want one", len(list.Items), err)
			}
			r := &list.Items[0]
			if want := RolloutName(tt.want.Workload, tt.want.Revision); r.Name != want {
				t.Errorf("name %s, want %s", r.Name, want)
			}
			if diff := cmp.Diff(tt.want, r.Spec, instants); diff != "" {
				t.Errorf("spec mismatch (-want +got):\n%s", diff)
			}
			if got := s.writeCount() - writes; (got > 0) != tt.wantWrite {
				t.Errorf("PutRollout() wrote %d times, want a write: %t", got, tt.wantWrite)
			}
			if r.Generation != tt.wantGeneration {
				t.Errorf("generation = %d, want %d", r.Generation, tt.wantGeneration)
			}
			if diff := cmp.Diff(map[string]string{v1alpha1.LabelWorkload: workloadHash(tt.want.Workload)}, r.Labels); diff != "" {
				t.Errorf("labels mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPutRolloutLabel: the workload label selects the rollouts of a workload, and is restored on an object
// that lost it even when the spec is unchanged.
func TestPutRolloutLabel(t *testing.T) {
	other := with(ro(1, rollout.PhaseCurrent), func(r *rollout.Rollout) { r.Workload.Name = "api" })
	s := newRolloutServer(t, true)
	c := &clock{}
	l := newRolloutLedger(s, c)
	apply(t, l, c, []op{putRollout(t1, ro(1, rollout.PhaseSuperseded)), putRollout(t1, ro(2, rollout.PhaseCurrent)), putRollout(t1, other)})

	var list v1alpha1.RolloutRecordList
	if err := s.List(t.Context(), &list, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelWorkload: workloadHash(apiDeploy)}); err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for _, rr := range list.Items {
		revs = append(revs, rr.Spec.Revision)
	}
	slices.Sort(revs)
	if diff := cmp.Diff([]int64{1, 2}, revs); diff != "" {
		t.Errorf("revisions of the label's workload (-want +got):\n%s", diff)
	}

	rr := getRollout(t, s, ro(2, rollout.PhaseCurrent))
	rr.Labels = map[string]string{"team": "payments"}
	if err := s.Update(t.Context(), rr); err != nil {
		t.Fatal(err)
	}
	apply(t, l, c, []op{putRollout(t1, ro(2, rollout.PhaseCurrent))})
	rr = getRollout(t, s, ro(2, rollout.PhaseCurrent))
	if diff := cmp.Diff(map[string]string{"team": "payments", v1alpha1.LabelWorkload: workloadHash(apiDeploy)}, rr.Labels); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
	if rr.Generation != 1 {
		t.Errorf("generation = %d, want 1: a label is not a spec change", rr.Generation)
	}
}

func TestPutRolloutErrors(t *testing.T) {
	errDown := errors.New("connection refused")
	conflict := apierrors.NewConflict(rolloutGR, "x", errors.New("the object has been modified"))
	exists := apierrors.NewAlreadyExists(rolloutGR, "x")
	r1 := ro(1, rollout.PhaseInProgress)
	tests := []struct {
		name      string
		before    []op
		fail      map[string][]error
		wantErr   error
		wantIn    string
		wantPhase string // of the object afterwards; "" when there is none
	}{
		{name: "read fails: wrapped", fail: map[string][]error{"get": {errDown}}, wantErr: errDown, wantIn: "reading rollout record"},
		{name: "create fails: wrapped", fail: map[string][]error{"create": {errDown}}, wantErr: errDown, wantIn: "creating rollout record"},
		{name: "created meanwhile: read again", fail: map[string][]error{"create": {exists}}, wantPhase: "Current"},
		{
			name: "update fails: wrapped", before: []op{putRollout(t1, r1)}, fail: map[string][]error{"update": {errDown}},
			wantErr: errDown, wantIn: "updating rollout record", wantPhase: "InProgress",
		},
		{name: "update conflicts: read again", before: []op{putRollout(t1, r1)}, fail: map[string][]error{"update": {conflict}}, wantPhase: "Current"},
		{
			name:   "status refresh fails: wrapped",
			before: []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", nil)}, fail: map[string][]error{"status": {errDown}},
			wantErr: errDown, wantIn: "updating the status of rollout record", wantPhase: "Current",
		},
		{
			name:   "status refresh conflicts: not an error",
			before: []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", nil)}, fail: map[string][]error{"status": {conflict}},
			wantPhase: "Current",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true)
			c := &clock{at: t1}
			l := newRolloutLedger(s, c)
			apply(t, l, c, tt.before)
			for op, errs := range tt.fail {
				s.failNext(op, errs...)
			}
			err := l.PutRollout(t.Context(), ro(1, rollout.PhaseCurrent))
			if !errors.Is(err, tt.wantErr) || err != nil && !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("PutRollout() error = %v, want %v in %q", err, tt.wantErr, tt.wantIn)
			}
			var rr v1alpha1.RolloutRecord
			err = s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: RolloutName(apiDeploy, 1)}, &rr)
			switch {
			case tt.wantPhase == "" && !apierrors.IsNotFound(err):
				t.Errorf("reading the object: %v, want none", err)
			case tt.wantPhase != "" && (err != nil || rr.Spec.Phase != tt.wantPhase):
				t.Errorf("object phase %q (%v), want %q", rr.Spec.Phase, err, tt.wantPhase)
			}
		})
	}
}

// TestRolloutDelivery drives a rollout through puts, deliveries and failures, and checks the sink statuses,
// the Delivered condition and what ListRollouts makes of them.
func TestRolloutDelivery(t *testing.T) {
	later, retry := t1.Add(time.Minute), t1.Add(2*time.Minute)
	errSlack := errors.New("post to slack: 503 Service Unavailable")
	refused := &sink.CredentialsError{StatusCode: 200, Message: "slack: chat.postMessage to #deploys refused: invalid_auth"}
	errRefused := fmt.Errorf("notify shop/web revision 1: %w", refused)
	// 1201 bytes; byte 1024 is in the middle of a character.
	long := "x" + strings.Repeat("é", 600)
	r1 := ro(1, rollout.PhaseInProgress)
	cur := with(r1, func(r *rollout.Rollout) { r.Phase, r.Ready, r.Completed = rollout.PhaseCurrent, 3, later })
	moreReady := with(r1, func(r *rollout.Rollout) { r.Ready = 2 })
	msg := map[string]string{"channel": "C024BE91L", "ts": "1718000000.000100"}
	edited := map[string]string{"channel": "C024BE91L", "ts": "1718000000.000100", "edited": "1"}
	tests := []struct {
		name          string
		ops           []op
		wantSinks     []v1alpha1.RolloutSinkStatus
		wantCondition *condition
		want          RolloutEntry
	}{
		{
			name: "never delivered: no status",
			ops:  []op{putRollout(t1, r1)},
			want: RolloutEntry{Rollout: r1},
		},
		{
			name:          "delivered: acknowledged, with its state",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(later, r1, "slack", msg)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later), State: msg}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true, State: msg}}},
		},
		{
			name: "delivered without state: the state kept",
			ops:  []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), putRollout(later, cur), rolloutDelivered(retry, cur, "slack", nil)},
			wantSinks: []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "Current", ObservedGeneration: 2, LastDelivered: ptrTime(retry),
				State: msg}},
			wantCondition: acknowledgedBy(2),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseCurrent, Synced: true, State: msg}}},
		},
		{
			name:          "delivered with a new state: replaced",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), rolloutDelivered(later, r1, "slack", edited)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later), State: edited}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true, State: edited}}},
		},
		{
			name:          "delivered with an empty state: cleared",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), rolloutDelivered(later, r1, "slack", map[string]string{})},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later)}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true}}},
		},
		{
			name:          "failed, retried later: attempts, error and next retry; not synced",
			ops:           []op{putRollout(t1, r1), rolloutFailed(later, r1, "slack", errSlack, 3, retry)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Attempts: 3, LastError: errSlack.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: deliveryFailed(1, "slack: "+errSlack.Error()),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {LastError: errSlack.Error()}}},
		},
		{
			name:          "credentials refused: the refusal's own text, reason CredentialsRefused",
			ops:           []op{putRollout(t1, r1), rolloutFailed(later, r1, "slack", errRefused, 0, retry)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", LastError: refused.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: rolloutCredentialsRefused(1, "slack: "+refused.Error()),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {LastError: refused.Error()}}},
		},
		{
			name: "credentials refused, then a new phase: still CredentialsRefused",
			ops:  []op{putRollout(t1, r1), rolloutFailed(later, r1, "slack", errRefused, 1, retry), putRollout(retry, cur)},
			wantSinks: []v1alpha1.RolloutSinkStatus{{Sink: "slack", Attempts: 1, LastError: refused.Error(),
				NextRetry: ptrTime(retry)}},
			wantCondition: rolloutCredentialsRefused(2, "slack: "+refused.Error()),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"slack": {LastError: refused.Error()}}},
		},
		{
			name: "credentials refused, then delivered: cleared",
			ops:  []op{putRollout(t1, r1), rolloutFailed(t1, r1, "slack", errRefused, 1, retry), rolloutDelivered(later, r1, "slack", msg)},
			wantSinks: []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later),
				State: msg}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true, State: msg}}},
		},
		{
			name:          "failed for good with a long error: no next retry, the error cut on a character boundary",
			ops:           []op{putRollout(t1, r1), rolloutFailed(later, r1, "slack", errors.New(long), 1, time.Time{})},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Attempts: 1, LastError: long[:1023] + "…"}},
			wantCondition: deliveryFailed(1, "slack: "+long[:1023]+"…"),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {LastError: long[:1023] + "…"}}},
		},
		{
			name:          "failed, then delivered: the failure cleared",
			ops:           []op{putRollout(t1, r1), rolloutFailed(t1, r1, "slack", errSlack, 2, retry), rolloutDelivered(later, r1, "slack", msg)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later), State: msg}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true, State: msg}}},
		},
		{
			name:          "delivered, then a new phase: pending, the sink acknowledged the older one",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), putRollout(later, cur)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(t1), State: msg}},
			wantCondition: pendingAt(2, "slack"),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, State: msg}}},
		},
		{
			name:          "delivered, then the same phase with more ready replicas: pending",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), putRollout(later, moreReady)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(t1), State: msg}},
			wantCondition: pendingAt(2, "slack"),
			want:          RolloutEntry{Rollout: moreReady, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, State: msg}}},
		},
		{
			name:          "an older snapshot delivered after the spec moved on: phase and state recorded, not the generation",
			ops:           []op{putRollout(t1, r1), putRollout(later, cur), rolloutDelivered(retry, r1, "slack", msg)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", LastDelivered: ptrTime(retry), State: msg}},
			wantCondition: pendingAt(2, "slack"),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, State: msg}}},
		},
		{
			name:          "a snapshot without its start delivered: it matches",
			ops:           []op{putRollout(t1, r1), rolloutDelivered(later, with(r1, func(r *rollout.Rollout) { r.Started = time.Time{} }), "slack", nil)},
			wantSinks:     []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later)}},
			wantCondition: acknowledgedBy(1),
			want:          RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true}}},
		},
		{
			name: "the new phase delivered: acknowledged at its generation",
			ops:  []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), putRollout(later, cur), rolloutDelivered(retry, cur, "slack", edited)},
			wantSinks: []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "Current", ObservedGeneration: 2, LastDelivered: ptrTime(retry),
				State: edited}},
			wantCondition: acknowledgedBy(2),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseCurrent, Synced: true, State: edited}}},
		},
		{
			name: "failure of the new phase: what the sink acknowledged stays",
			ops: []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), putRollout(later, cur),
				rolloutFailed(retry, cur, "slack", errSlack, 1, time.Time{})},
			wantSinks: []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, Attempts: 1, LastError: errSlack.Error(),
				LastDelivered: ptrTime(t1), State: msg}},
			wantCondition: deliveryFailed(2, "slack: "+errSlack.Error()),
			want: RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{
				"slack": {Phase: rollout.PhaseInProgress, State: msg, LastError: errSlack.Error()},
			}},
		},
		{
			name: "two sinks, one acknowledged: pending for the other",
			ops:  []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), rolloutDelivered(t1, r1, "githubdeploy", nil), putRollout(later, cur), rolloutDelivered(retry, cur, "githubdeploy", nil)},
			wantSinks: []v1alpha1.RolloutSinkStatus{
				{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(t1), State: msg},
				{Sink: "githubdeploy", Phase: "Current", ObservedGeneration: 2, LastDelivered: ptrTime(retry)},
			},
			wantCondition: pendingAt(2, "slack"),
			want: RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{
				"slack":        {Phase: rollout.PhaseInProgress, State: msg},
				"githubdeploy": {Phase: rollout.PhaseCurrent, Synced: true},
			}},
		},
		{
			name: "failed, then a new spec: the failure shows",
			ops:  []op{putRollout(t1, r1), rolloutFailed(t1, r1, "githubdeploy", errSlack, 1, retry), putRollout(later, cur)},
			wantSinks: []v1alpha1.RolloutSinkStatus{
				{Sink: "githubdeploy", Attempts: 1, LastError: errSlack.Error(), NextRetry: ptrTime(retry)},
			},
			wantCondition: deliveryFailed(2, "githubdeploy: "+errSlack.Error()),
			want:          RolloutEntry{Rollout: cur, Sinks: map[string]RolloutDelivery{"githubdeploy": {LastError: errSlack.Error()}}},
		},
		{
			name: "two sinks, both acknowledged",
			ops:  []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", msg), rolloutDelivered(later, r1, "githubdeploy", nil)},
			wantSinks: []v1alpha1.RolloutSinkStatus{
				{Sink: "slack", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(t1), State: msg},
				{Sink: "githubdeploy", Phase: "InProgress", ObservedGeneration: 1, LastDelivered: ptrTime(later)},
			},
			wantCondition: acknowledgedBy(1),
			want: RolloutEntry{Rollout: r1, Sinks: map[string]RolloutDelivery{
				"slack":        {Phase: rollout.PhaseInProgress, Synced: true, State: msg},
				"githubdeploy": {Phase: rollout.PhaseInProgress, Synced: true},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true)
			c := &clock{}
			l := newRolloutLedger(s, c)
			apply(t, l, c, tt.ops)

			rr := getRollout(t, s, r1)
			if diff := cmp.Diff(tt.wantSinks, rr.Status.Sinks, instants, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sink status mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCondition, deliveredCondition(rr)); diff != "" {
				t.Errorf("Delivered condition mismatch (-want +got):\n%s", diff)
			}
			if tt.wantCondition != nil && rr.Status.ObservedGeneration != rr.Generation {
				t.Errorf("status.observedGeneration = %d, want %d", rr.Status.ObservedGeneration, rr.Generation)
			}
			got, err := l.ListRollouts(t.Context())
			if err != nil {
				t.Fatalf("ListRollouts() error = %v", err)
			}
			if diff := cmp.Diff([]RolloutEntry{tt.want}, got, instants, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListRollouts() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRolloutDeliveredKeepsItsState: the state handed to RolloutDelivered is copied, not kept.
func TestRolloutDeliveredKeepsItsState(t *testing.T) {
	s := newRolloutServer(t, true)
	c := &clock{at: t1}
	l := newRolloutLedger(s, c)
	state := map[string]string{"ts": "1"}
	apply(t, l, c, []op{putRollout(t1, ro(1, rollout.PhaseInProgress)), rolloutDelivered(t1, ro(1, rollout.PhaseInProgress), "slack", state)})
	state["ts"] = "2"
	entries, err := l.ListRollouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Sinks["slack"].State["ts"] != "1" {
		t.Errorf("ListRollouts() = %+v, want the state as delivered (ts 1)", entries)
	}
}

func TestRolloutStateBounds(t *testing.T) {
	entries := func(n, keyLen, valueLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			k := fmt.Sprintf("%0*d", keyLen, i)
			m[k] = strings.Repeat("é", valueLen)
		}
		return m
	}
	tests := []struct {
		name    string
		state   map[string]string
		wantErr error
	}{
		{name: "at the bounds", state: entries(16, 63, 1024)},
		{name: "too many entries", state: entries(17, 2, 1), wantErr: ErrStateTooLarge},
		{name: "key too long", state: entries(1, 64, 1), wantErr: ErrStateTooLarge},
		{name: "value too long", state: entries(1, 2, 1025), wantErr: ErrStateTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true)
			c := &clock{at: t1}
			l := newRolloutLedger(s, c)
			r := ro(1, rollout.PhaseInProgress)
			apply(t, l, c, []op{putRollout(t1, r)})
			writes := s.writeCount()
			err := l.RolloutDelivered(t.Context(), r, "slack", tt.state)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RolloutDelivered() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if n := s.writeCount() - writes; n != 0 {
					t.Errorf("RolloutDelivered() wrote %d times, want 0", n)
				}
				return
			}
			if diff := cmp.Diff(tt.state, getRollout(t, s, r).Status.Sinks[0].State); diff != "" {
				t.Errorf("state mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRolloutStatusErrors(t *testing.T) {
	errDown := errors.New("connection refused")
	conflict := apierrors.NewConflict(rolloutGR, "x", errors.New("the object has been modified"))
	r1 := ro(1, rollout.PhaseInProgress)
	calls := []struct {
		name string
		call func(ctx context.Context, l *Ledger) error
	}{
		{"RolloutDelivered", func(ctx context.Context, l *Ledger) error { return l.RolloutDelivered(ctx, r1, "slack", nil) }},
		{"RolloutFailed", func(ctx context.Context, l *Ledger) error {
			return l.RolloutFailed(ctx, r1, "slack", errDown, 1, time.Time{})
		}},
	}
	tests := []struct {
		name          string
		put           bool // the rollout is in the ledger
		fail          map[string][]error
		wantErr       error
		wantIn        string
		wantCondition bool
	}{
		{name: "no such rollout (pruned): not an error"},
		{name: "pruned between the read and the write: not an error", put: true, fail: map[string][]error{"status": {apierrors.NewNotFound(rolloutGR, "x")}}},
		{name: "read fails: wrapped", put: true, fail: map[string][]error{"get": {errDown}}, wantErr: errDown, wantIn: "reading rollout record"},
		{
			name: "status update fails: wrapped", put: true, fail: map[string][]error{"status": {errDown}}, wantErr: errDown,
			wantIn: "updating the status of rollout record",
		},
		{name: "status update conflicts: read again and retried", put: true, fail: map[string][]error{"status": {conflict}}, wantCondition: true},
	}
	for _, c := range calls {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				s := newRolloutServer(t, true)
				clk := &clock{at: t1}
				l := newRolloutLedger(s, clk)
				if tt.put {
					apply(t, l, clk, []op{putRollout(t1, r1)})
				}
				for op, errs := range tt.fail {
					s.failNext(op, errs...)
				}
				writes := s.writeCount()
				err := c.call(t.Context(), l)
				if !errors.Is(err, tt.wantErr) || err != nil && !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("%s() error = %v, want %v in %q", c.name, err, tt.wantErr, tt.wantIn)
				}
				if !tt.put {
					if n := s.writeCount() - writes; n != 0 {
						t.Errorf("%s() wrote %d times, want 0", c.name, n)
					}
					return
				}
				if got := deliveredCondition(getRollout(t, s, r1)) != nil; got != tt.wantCondition {
					t.Errorf("Delivered condition written: %t, want %t", got, tt.wantCondition)
				}
			})
		}
	}
}

// TestPutRolloutRefreshesDelivered: a spec change shows the rollout pending at once; a refresh that fails is
// retried by the next PutRollout of the same rollout, which writes nothing else.
func TestPutRolloutRefreshesDelivered(t *testing.T) {
	errDown := errors.New("connection refused")
	r1 := ro(1, rollout.PhaseInProgress)
	cur := with(r1, func(r *rollout.Rollout) { r.Phase = rollout.PhaseCurrent })
	s := newRolloutServer(t, true)
	c := &clock{at: t1}
	l := newRolloutLedger(s, c)
	apply(t, l, c, []op{putRollout(t1, r1), rolloutDelivered(t1, r1, "slack", nil)})

	s.failNext("status", errDown)
	if err := l.PutRollout(t.Context(), cur); !errors.Is(err, errDown) {
		t.Fatalf("PutRollout() error = %v, want %v", err, errDown)
	}
	if diff := cmp.Diff(acknowledgedBy(1), deliveredCondition(getRollout(t, s, r1))); diff != "" {
		t.Errorf("Delivered condition after a failed refresh mismatch (-want +got):\n%s", diff)
	}
	if err := l.PutRollout(t.Context(), cur); err != nil {
		t.Fatalf("PutRollout() again error = %v", err)
	}
	if diff := cmp.Diff(pendingAt(2, "slack"), deliveredCondition(getRollout(t, s, r1))); diff != "" {
		t.Errorf("Delivered condition mismatch (-want +got):\n%s", diff)
	}
	writes := s.writeCount()
	if err := l.PutRollout(t.Context(), cur); err != nil {
		t.Fatalf("PutRollout() a third time error = %v", err)
	}
	if n := s.writeCount() - writes; n != 0 {
		t.Errorf("PutRollout() of an up-to-date rollout wrote %d times, want 0", n)
	}
}

// TestRolloutsPlainFakeClient: without generations (controller-runtime's fake as it is), a new phase is still
// not shown delivered before the sink acknowledges it; other changes are not detectable (TestRolloutDelivery
// covers them with generations).
func TestRolloutsPlainFakeClient(t *testing.T) {
	r1 := ro(1, rollout.PhaseInProgress)
	cur := with(r1, func(r *rollout.Rollout) { r.Phase = rollout.PhaseCurrent })
	s := newRolloutServer(t, false)
	c := &clock{at: t1}
	l := newRolloutLedger(s, c)
	steps := []struct {
		name          string
		op            op
		wantCondition *condition
		wantSynced    bool
	}{
		{name: "created", op: putRollout(t1, r1)},
		{name: "delivered", op: rolloutDelivered(t1, r1, "slack", nil), wantCondition: acknowledgedBy(0), wantSynced: true},
		{name: "new phase", op: putRollout(t1, cur), wantCondition: pendingAt(0, "slack")},
		{name: "older snapshot delivered late", op: rolloutDelivered(t1, r1, "slack", nil), wantCondition: pendingAt(0, "slack")},
		{name: "new phase delivered", op: rolloutDelivered(t1, cur, "slack", nil), wantCondition: acknowledgedBy(0), wantSynced: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			apply(t, l, c, []op{st.op})
			rr := getRollout(t, s, r1)
			if rr.Generation != 0 {
				t.Errorf("generation = %d; the fake client maintains it now: test with its generations", rr.Generation)
			}
			if diff := cmp.Diff(st.wantCondition, deliveredCondition(rr)); diff != "" {
				t.Errorf("Delivered condition mismatch (-want +got):\n%s", diff)
			}
			entries, err := l.ListRollouts(t.Context())
			if err != nil {
				t.Fatalf("ListRollouts() error = %v", err)
			}
			if len(entries) != 1 || entries[0].Sinks["slack"].Synced != st.wantSynced {
				t.Errorf("ListRollouts() = %+v, want one entry, synced %t", entries, st.wantSynced)
			}
		})
	}
}

func TestListRollouts(t *testing.T) {
	foreign := &v1alpha1.RolloutRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: RolloutName(apiDeploy, 9)},
		Spec:       wantRolloutSpec(ro(9, rollout.PhaseCurrent)),
	}
	errDown := errors.New("connection refused")
	sts := with(ro(4, rollout.PhaseFailed), func(r *rollout.Rollout) {
		r.Workload = owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "db"}
		r.Reason, r.Message, r.Finished = "ProgressDeadlineExceeded", "0 of 3 updated replicas are available", t1
	})
	tests := []struct {
		name    string
		fail    bool
		want    []RolloutEntry
		wantErr error
	}{
		{
			name: "every rollout of the namespace, none of another, as put",
			want: []RolloutEntry{
				{Rollout: seconds(full), Sinks: map[string]RolloutDelivery{"slack": {Phase: rollout.PhaseCurrent, Synced: true, State: map[string]string{"ts": "1"}}}},
				{Rollout: sts},
				{Rollout: ro(1, rollout.PhaseSuperseded)},
			},
		},
		{name: "list fails: wrapped", fail: true, wantErr: errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true, foreign)
			c := &clock{}
			l := newRolloutLedger(s, c)
			apply(t, l, c, []op{
				putRollout(t1, full), rolloutDelivered(t1, full, "slack", map[string]string{"ts": "1"}),
				putRollout(t1, sts), putRollout(t1, ro(1, rollout.PhaseSuperseded)),
			})
			if tt.fail {
				s.failNext("list", errDown)
			}
			got, err := l.ListRollouts(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ListRollouts() error = %v, want %v", err, tt.wantErr)
			}
			sortEntries := cmpopts.SortSlices(func(a, b RolloutEntry) bool { return a.Rollout.Workload.String() < b.Rollout.Workload.String() })
			if diff := cmp.Diff(tt.want, got, sortEntries, instants, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListRollouts() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWorkloadRollouts: the rollouts of one workload by ascending revision, with the sinks' states; none of
// another workload, of another namespace, or of a record whose label was changed to name the workload.
func TestWorkloadRollouts(t *testing.T) {
	db := owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "db"}
	foreign := &v1alpha1.RolloutRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: RolloutName(apiDeploy, 9), Labels: map[string]string{v1alpha1.LabelWorkload: workloadHash(apiDeploy)}},
		Spec:       wantRolloutSpec(ro(9, rollout.PhaseCurrent)),
	}
	relabelled := &v1alpha1.RolloutRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ro-relabelled", Labels: map[string]string{v1alpha1.LabelWorkload: workloadHash(apiDeploy)}},
		Spec:       wantRolloutSpec(with(ro(7, rollout.PhaseCurrent), func(r *rollout.Rollout) { r.Workload = db })),
	}
	failed := with(ro(2, rollout.PhaseFailed), func(r *rollout.Rollout) { r.Finished = t1 })
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		w       owner.Workload
		fail    bool
		want    []RolloutEntry
		wantErr error
	}{
		{
			name: "by ascending revision, with the states",
			w:    webDeploy,
			want: []RolloutEntry{
				{Rollout: ro(1, rollout.PhaseSuperseded)},
				{Rollout: seconds(failed), Sinks: map[string]RolloutDelivery{"delivery": {Phase: rollout.PhaseFailed, Synced: true, State: map[string]string{"observed": "failed"}}}},
				{Rollout: ro(3, rollout.PhaseCurrent)},
			},
		},
		{name: "another workload", w: db, want: []RolloutEntry{{Rollout: ro4db()}}},
		{name: "a workload without rollouts", w: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "api"}},
		{name: "list fails: wrapped", w: webDeploy, fail: true, wantErr: errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutServer(t, true, foreign, relabelled)
			c := &clock{}
			l := newRolloutLedger(s, c)
			apply(t, l, c, []op{
				putRollout(t1, ro(3, rollout.PhaseCurrent)), putRollout(t1, ro(1, rollout.PhaseSuperseded)),
				putRollout(t1, failed), rolloutDelivered(t1, failed, "delivery", map[string]string{"observed": "failed"}),
				putRollout(t1, ro4db()),
			})
			if tt.fail {
				s.failNext("list", errDown)
			}
			got, err := l.WorkloadRollouts(t.Context(), tt.w)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WorkloadRollouts() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, instants, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("WorkloadRollouts() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// ro4db is revision 4 of the StatefulSet db.
func ro4db() rollout.Rollout {
	return with(ro(4, rollout.PhaseInProgress), func(r *rollout.Rollout) {
		r.Workload = owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "db"}
	})
}

// TestRolloutConversion: a rollout survives the ledger with its times cut to seconds and every other field
// as it was.
func TestRolloutConversion(t *testing.T) {
	for _, r := range []rollout.Rollout{full, ro(1, rollout.PhaseInProgress), {Workload: webDeploy, Phase: rollout.PhaseDeleted, Started: t1}} {
		t.Run(fmt.Sprintf("%s/%d", r.Phase, r.Revision), func(t *testing.T) {
			s := rolloutSpec(r, t1, nil)
			if diff := cmp.Diff(seconds(r), rolloutOf(s), instants, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rolloutOf(rolloutSpec()) mismatch (-want +got):\n%s", diff)
			}
			if !rolloutMatches(s, r) || !rolloutMatches(s, seconds(r)) {
				t.Errorf("rolloutMatches(rolloutSpec(r), r) = false")
			}
			if rolloutMatches(s, with(r, func(r *rollout.Rollout) { r.Desired++ })) {
				t.Errorf("rolloutMatches() of another rollout = true")
			}
		})
	}
}

// stored is a RolloutRecord as the ledger would have written it, for the retention tests.
type stored struct {
	workload string // name of a Deployment in shop
	revision int64
	phase    rollout.Phase
	started  time.Duration // before now
	finished time.Duration // before now; 0: unset
}

func (st stored) object() *v1alpha1.RolloutRecord {
	now := t1
	r := rollout.Rollout{
		Workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: st.workload},
		Revision: st.revision, Phase: st.phase, Started: now.Add(-st.started),
		Containers: []rollout.Container{{Name: "app", Image: "ghcr.io/octo-org/" + st.workload}},
	}
	if st.finished > 0 {
		r.Finished = now.Add(-st.finished)
	}
	w := apiWorkload(r.Workload)
	return &v1alpha1.RolloutRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: RolloutName(w, r.Revision), Generation: 1,
			UID: types.UID(fmt.Sprintf("uid-%s-%d", st.workload, st.revision)), Labels: map[string]string{v1alpha1.LabelWorkload: workloadHash(w)}},
		Spec: rolloutSpec(r, now, nil),
	}
}

func (st stored) String() string { return fmt.Sprintf("%s/%d", st.workload, st.revision) }

func TestPruneRollouts(t *testing.T) {
	const day = 24 * time.Hour
	const (
		inProgress = rollout.PhaseInProgress
		current    = rollout.PhaseCurrent
		failed     = rollout.PhaseFailed
		rolledBack = rollout.PhaseRolledBack
		superseded = rollout.PhaseSuperseded
		deleted    = rollout.PhaseDeleted
	)
	tests := []struct {
		name        string
		records     []stored
		keep        int
		maxAge      time.Duration
		wantDeleted []string // workload/revision
	}{
		{
			name:    "within the bounds: nothing",
			records: []stored{{"web", 1, superseded, 2 * day, day}, {"web", 2, current, day, 0}},
			keep:    10, maxAge: 30 * day,
		},
		{
			name: "keep 2: the older superseded ones go",
			records: []stored{
				{"web", 1, superseded, 5 * day, 4 * day}, {"web", 2, superseded, 4 * day, 3 * day},
				{"web", 3, superseded, 3 * day, 2 * day}, {"web", 4, current, 2 * day, 0},
			},
			keep: 2, maxAge: 30 * day,
			wantDeleted: []string{"web/1", "web/2"},
		},
		{
			name: "keep counts per workload",
			records: []stored{
				{"web", 1, superseded, 3 * day, 2 * day}, {"web", 2, current, 2 * day, 0},
				{"api", 7, superseded, 3 * day, 2 * day}, {"api", 8, current, 2 * day, 0},
			},
			keep: 1, maxAge: 0,
			wantDeleted: []string{"api/7", "web/1"},
		},
		{
			name: "keep orders by revision, not by time",
			records: []stored{
				{"web", 10, current, 3 * day, 0}, {"web", 9, rolledBack, 1 * day, time.Hour}, {"web", 2, superseded, time.Hour, time.Minute},
			},
			keep:        1,
			wantDeleted: []string{"web/2", "web/9"},
		},
		{
			name: "beyond keep: final, Current and Failed go, InProgress stays",
			records: []stored{
				{"web", 1, inProgress, 9 * day, 0}, {"web", 2, current, 8 * day, 0}, {"web", 3, failed, 7 * day, 7 * day},
				{"web", 4, rolledBack, 6 * day, 6 * day}, {"web", 5, deleted, 5 * day, 5 * day}, {"web", 6, superseded, 4 * day, 4 * day},
				{"web", 7, current, day, 0},
			},
			keep:        1,
			wantDeleted: []string{"web/2", "web/3", "web/4", "web/5", "web/6"},
		},
		{
			name:    "keep 1: the highest revision stays, whatever its phase",
			records: []stored{{"a", 1, inProgress, 100 * day, 0}, {"b", 1, failed, 100 * day, 100 * day}, {"c", 1, superseded, 100 * day, 100 * day}},
			keep:    1, maxAge: day,
		},
		{
			name: "max age: final records finished long ago go, within keep too",
			records: []stored{
				{"web", 1, superseded, 40 * day, 39 * day}, {"web", 2, rolledBack, 39 * day, 31 * day},
				{"web", 3, superseded, 35 * day, 29 * day}, {"web", 4, current, 30 * day, 0},
			},
			keep: 10, maxAge: 30 * day,
			wantDeleted: []string{"web/1", "web/2"},
		},
		{
			name: "max age: without a finish time, the start counts",
			records: []stored{
				{"web", 1, superseded, 31 * day, 0}, {"web", 2, superseded, 29 * day, 0}, {"web", 3, current, day, 0},
			},
			keep: 10, maxAge: 30 * day,
			wantDeleted: []string{"web/1"},
		},
		{
			name: "max age: not-final records stay however old",
			records: []stored{
				{"web", 1, failed, 90 * day, 89 * day}, {"web", 2, current, 80 * day, 0}, {"web", 3, inProgress, 70 * day, 0},
				{"web", 4, current, 60 * day, 0},
			},
			keep: 10, maxAge: 30 * day,
		},
		{
			name: "the highest revision: only Deleted and older than max age goes",
			records: []stored{
				{"gone", 3, deleted, 60 * day, 31 * day}, {"gone", 2, superseded, 70 * day, 60 * day},
				{"recent", 5, deleted, 60 * day, 29 * day},
				{"rolledback", 4, rolledBack, 60 * day, 59 * day},
				{"superseded", 2, superseded, 60 * day, 59 * day},
			},
			keep: 1, maxAge: 30 * day,
			wantDeleted: []string{"gone/2", "gone/3"},
		},
		{
			name:    "the highest revision Deleted, no max age: stays",
			records: []stored{{"gone", 3, deleted, 600 * day, 599 * day}},
			keep:    1,
		},
		{
			name: "no limits: nothing",
			records: []stored{
				{"web", 1, superseded, 600 * day, 599 * day}, {"web", 2, deleted, 500 * day, 499 * day}, {"web", 3, deleted, 400 * day, 399 * day},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []client.Object
			for _, st := range tt.records {
				objs = append(objs, st.object())
			}
			s := newRolloutServer(t, true, objs...)
			l := newRolloutLedger(s, &clock{at: t1})
			n, err := l.PruneRollouts(t.Context(), tt.keep, tt.maxAge)
			if err != nil {
				t.Fatalf("PruneRollouts() error = %v", err)
			}
			var list v1alpha1.RolloutRecordList
			if err := s.List(t.Context(), &list); err != nil {
				t.Fatal(err)
			}
			left := map[string]bool{}
			for _, rr := range list.Items {
				left[rr.Name] = true
			}
			var gone []string
			for _, st := range tt.records {
				if !left[st.object().Name] {
					gone = append(gone, st.String())
				}
			}
			slices.Sort(gone)
			if diff := cmp.Diff(tt.wantDeleted, gone, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deleted rollouts (-want +got):\n%s", diff)
			}
			if n != len(tt.wantDeleted) {
				t.Errorf("PruneRollouts() = %d, want %d", n, len(tt.wantDeleted))
			}
		})
	}
}

// TestPruneRolloutsPreconditions: every delete is conditional on the object as listed; an object that went
// or changed meanwhile is not an error, and left to the next pruning; other failures are returned, after the
// other deletes.
func TestPruneRolloutsPreconditions(t *testing.T) {
	errDown := errors.New("connection refused")
	old := []stored{{"web", 1, rollout.PhaseSuperseded, 50 * time.Hour, 49 * time.Hour}, {"web", 2, rollout.PhaseSuperseded, 40 * time.Hour, 39 * time.Hour}}
	top := stored{"web", 3, rollout.PhaseCurrent, time.Hour, 0}
	tests := []struct {
		name        string
		fail        []error // of the deletes, in name order
		wantErr     error
		wantDeleted int
	}{
		{name: "both deleted", wantDeleted: 2},
		{name: "one gone meanwhile: not an error", fail: []error{apierrors.NewNotFound(rolloutGR, "x")}, wantDeleted: 1},
		{name: "one changed meanwhile: skipped", fail: []error{apierrors.NewConflict(rolloutGR, "x", errors.New("precondition failed"))}, wantDeleted: 1},
		{name: "one fails: returned, the other deleted", fail: []error{errDown}, wantErr: errDown, wantDeleted: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []client.Object{top.object()}
			for _, st := range old {
				objs = append(objs, st.object())
			}
			s := newRolloutServer(t, true, objs...)
			s.failNext("delete", tt.fail...)
			l := newRolloutLedger(s, &clock{at: t1})
			n, err := l.PruneRollouts(t.Context(), 1, 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PruneRollouts() error = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantDeleted {
				t.Errorf("PruneRollouts() = %d, want %d", n, tt.wantDeleted)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.deletes) != len(old) {
				t.Fatalf("%d deletes with preconditions, want %d", len(s.deletes), len(old))
			}
			uids := map[types.UID]bool{}
			for _, st := range old {
				uids[st.object().UID] = true
			}
			for _, p := range s.deletes {
				if p.UID == nil || !uids[*p.UID] || p.ResourceVersion == nil || *p.ResourceVersion == "" {
					t.Errorf("delete preconditions %+v, want the listed UID and resourceVersion", p)
				}
			}
		})
	}
	t.Run("an object changed since the listing stays", func(t *testing.T) {
		objs := []client.Object{top.object()}
		for _, st := range old {
			objs = append(objs, st.object())
		}
		s := newRolloutServer(t, true, objs...)
		l := newRolloutLedger(s, &clock{at: t1})
		// Listing is done by PruneRollouts itself: change the object between its list and its delete.
		changed := false
		l.Reader = listThen{Reader: s, after: func() {
			if changed {
				return
			}
			changed = true
			rr := &v1alpha1.RolloutRecord{}
			if err := s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: old[0].object().Name}, rr); err != nil {
				t.Fatal(err)
			}
			rr.Status.Sinks = []v1alpha1.RolloutSinkStatus{{Sink: "slack", Phase: "Superseded"}}
			if err := s.Status().Update(t.Context(), rr); err != nil {
				t.Fatal(err)
			}
		}}
		n, err := l.PruneRollouts(t.Context(), 1, 0)
		if err != nil || n != 1 {
			t.Fatalf("PruneRollouts() = %d, %v, want 1, nil", n, err)
		}
		var rr v1alpha1.RolloutRecord
		if err := s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: old[0].object().Name}, &rr); err != nil {
			t.Errorf("the changed rollout: %v, want it kept", err)
		}
	})
	t.Run("list fails: wrapped", func(t *testing.T) {
		s := newRolloutServer(t, true)
		s.failNext("list", errDown)
		l := newRolloutLedger(s, &clock{at: t1})
		if _, err := l.PruneRollouts(t.Context(), 1, 0); !errors.Is(err, errDown) || !strings.Contains(err.Error(), "listing the rollout ledger") {
			t.Errorf("PruneRollouts() error = %v, want %v, wrapped", err, errDown)
		}
	})
}

// listThen is a Reader that calls after once a List returned.
type listThen struct {
	client.Reader
	after func()
}

func (r listThen) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	err := r.Reader.List(ctx, list, opts...)
	r.after()
	return err
}

// TestPrunable is the retention decision on its own.
func TestPrunable(t *testing.T) {
	at := func(phase rollout.Phase, finishedAgo time.Duration) v1alpha1.RolloutRecordSpec {
		s := v1alpha1.RolloutRecordSpec{Phase: string(phase), Started: metav1.NewTime(t1.Add(-100 * time.Hour))}
		if finishedAgo > 0 {
			s.Finished = ptrTime(t1.Add(-finishedAgo))
		}
		return s
	}
	tests := []struct {
		name   string
		rank   int
		spec   v1alpha1.RolloutRecordSpec
		keep   int
		maxAge time.Duration
		want   bool
	}{
		{name: "highest, Deleted, expired", rank: 0, spec: at(rollout.PhaseDeleted, 3*time.Hour), keep: 1, maxAge: 2 * time.Hour, want: true},
		{name: "highest, Deleted, exactly max age", rank: 0, spec: at(rollout.PhaseDeleted, 2*time.Hour), keep: 1, maxAge: 2 * time.Hour},
		{name: "highest, Superseded, expired", rank: 0, spec: at(rollout.PhaseSuperseded, 3*time.Hour), keep: 1, maxAge: 2 * time.Hour},
		{name: "second, within keep, final, fresh", rank: 1, spec: at(rollout.PhaseSuperseded, time.Hour), keep: 2, maxAge: 2 * time.Hour},
		{name: "second, within keep, final, expired", rank: 1, spec: at(rollout.PhaseSuperseded, 3*time.Hour), keep: 2, maxAge: 2 * time.Hour, want: true},
		{name: "second, beyond keep, Current", rank: 1, spec: at(rollout.PhaseCurrent, 0), keep: 1, want: true},
		{name: "second, beyond keep, InProgress", rank: 1, spec: at(rollout.PhaseInProgress, 0), keep: 1},
		{name: "second, within keep, Failed, expired: not final", rank: 1, spec: at(rollout.PhaseFailed, 300*time.Hour), keep: 5, maxAge: time.Hour},
		{name: "keep 0: no limit by count", rank: 50, spec: at(rollout.PhaseSuperseded, time.Hour), keep: 0},
		{name: "keep negative: no limit by count", rank: 50, spec: at(rollout.PhaseSuperseded, time.Hour), keep: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := prunable(tt.rank, tt.spec, tt.keep, tt.maxAge, t1); got != tt.want {
				t.Errorf("prunable(%d, %s, keep %d, max age %s) = %t, want %t", tt.rank, tt.spec.Phase, tt.keep, tt.maxAge, got, tt.want)
			}
		})
	}
}
