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
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// The ledger is tested against controller-runtime's fake client, used as both Client and Reader as the
// manager's client and API reader are. The fake does not maintain metadata.generation and does not validate
// objects; apiServer adds both, the way the API server does for the DeploymentRecord CRD (deploy/05-crd.yaml),
// so that the Synced logic is tested with the generations it sees in a cluster. TestPlainFakeClient covers the
// fake as it is.

const namespace = "deployment-tracker"

var (
	t0 = time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC) // pods start at t0 + offset
	t1 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // the ledger's clock
)

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

var (
	dA = digest('a')
	dB = digest('b')
)

func rec(digest, version string) record.Record {
	return record.Record{
		Name: "ghcr.io/octo-org/web", Digest: digest, Version: version, Status: record.StatusDeployed,
		LogicalEnvironment: "production", PhysicalEnvironment: "eu-west-1", Cluster: "prod-1",
		DeploymentName: "shop/web/app",
	}
}

var (
	recA = rec(dA, "1.4.2")
	recB = rec(dB, "1.5.0")
)

func decommissioned(r record.Record) record.Record {
	r.Status = record.StatusDecommissioned
	return r
}

func withTags(r record.Record, tags map[string]string) record.Record {
	r.Tags = tags
	return r
}

var web = v1alpha1.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}

// decidedBy is the Meta of container app of the Deployment web, decided by a pod that started at t0+started (no
// pod: zero) and was seen first by source.
func decidedBy(started time.Duration, source string) Meta {
	m := Meta{Workload: web, Container: "app", Source: source}
	if started >= 0 {
		m.PodStarted = t0.Add(started)
	}
	return m
}

const noPod = -1

// wantSpec is the spec Put writes for r and m, first seen at firstSeen.
func wantSpec(r record.Record, m Meta, firstSeen time.Time) v1alpha1.DeploymentRecordSpec {
	s := v1alpha1.DeploymentRecordSpec{
		Name: r.Name, Digest: r.Digest, Version: r.Version, Status: string(r.Status),
		LogicalEnvironment: r.LogicalEnvironment, PhysicalEnvironment: r.PhysicalEnvironment, Cluster: r.Cluster,
		DeploymentName: r.DeploymentName, Tags: r.Tags, RuntimeRisks: r.RuntimeRisks, GitHubRepository: r.GitHubRepository,
		Workload: m.Workload, Container: m.Container, FirstSeen: metav1.NewTime(firstSeen), Source: m.Source,
	}
	if !m.PodStarted.IsZero() {
		t := metav1.NewTime(m.PodStarted)
		s.PodStarted = &t
	}
	return s
}

// apiServer is the fake client with the API server's part for DeploymentRecords: metadata.generation is 1 on
// create and counts the updates that change the spec; objects the CRD's schema would reject are rejected;
// and the next calls of an operation can be made to fail.
type apiServer struct {
	client.Client
	generations bool

	pager pager // List pages as the API server does

	mu       sync.Mutex
	failures map[string][]error // operation (get, list, create, update, status, delete) → errors of its next calls
	writes   int                // successful creates, updates, status updates and deletes
	// beforeDelete, if set, runs before each delete reaches the fake (a write racing with it).
	beforeDelete func(ctx context.Context, c client.WithWatch, obj client.Object)
}

func newAPIServer(t *testing.T, generations bool, objs ...client.Object) *apiServer {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatalf("AddToScheme() error = %v", err)
	}
	s := &apiServer{generations: generations, failures: map[string][]error{}}
	s.Client = fake.NewClientBuilder().
		WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.DeploymentRecord{}).
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
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				if err := s.failure("delete"); err != nil {
					return err
				}
				s.mu.Lock()
				before := s.beforeDelete
				s.mu.Unlock()
				if before != nil {
					before(ctx, c, obj)
				}
				// The fake checks the resourceVersion precondition, not the UID one.
				var do client.DeleteOptions
				do.ApplyOptions(opts)
				if do.Preconditions != nil && do.Preconditions.UID != nil {
					cur := obj.DeepCopyObject().(client.Object)
					if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
						return err
					}
					if cur.GetUID() != *do.Preconditions.UID {
						return apierrors.NewConflict(gr, obj.GetName(), errors.New("the UID in the precondition does not match"))
					}
				}
				return s.wrote(c.Delete(ctx, obj, opts...))
			},
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := s.failure("create"); err != nil {
					return err
				}
				if err := validate(obj); err != nil {
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
				if err := validate(obj); err != nil {
					return err
				}
				if dr, ok := obj.(*v1alpha1.DeploymentRecord); ok && s.generations {
					var cur v1alpha1.DeploymentRecord
					if err := c.Get(ctx, client.ObjectKeyFromObject(dr), &cur); err != nil {
						return err
					}
					dr.Generation = cur.Generation
					if !equality.Semantic.DeepEqual(cur.Spec, dr.Spec) {
						dr.Generation++
					}
				}
				return s.wrote(c.Update(ctx, obj, opts...))
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				if err := s.failure("status"); err != nil {
					return err
				}
				if err := validate(obj); err != nil {
					return err
				}
				return s.wrote(c.SubResource(sub).Update(ctx, obj, opts...))
			},
		}).
		Build()
	return s
}

func (s *apiServer) failNext(op string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[op] = append(s.failures[op], errs...)
}

func (s *apiServer) failure(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures[op]) == 0 {
		return nil
	}
	err := s.failures[op][0]
	s.failures[op] = s.failures[op][1:]
	return err
}

func (s *apiServer) wrote(err error) error {
	if err == nil {
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
	return err
}

func (s *apiServer) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

var (
	digestPattern     = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	conditionReason   = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)
	gr                = schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "deploymentrecords"}
	specStatuses      = []string{v1alpha1.StatusDeployed, v1alpha1.StatusDecommissioned}
	specSources       = []string{v1alpha1.SourceWebhook, v1alpha1.SourceInformer, v1alpha1.SourceLedger}
	conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}
)

// validate rejects what the CRD's schema rejects, as the API server does (422 Invalid).
func validate(obj client.Object) error {
	dr, ok := obj.(*v1alpha1.DeploymentRecord)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(dr.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), dr.Name, msg))
	}
	spec := field.NewPath("spec")
	if !digestPattern.MatchString(dr.Spec.Digest) {
		errs = append(errs, field.Invalid(spec.Child("digest"), dr.Spec.Digest, "must match "+digestPattern.String()))
	}
	if !slices.Contains(specStatuses, dr.Spec.Status) {
		errs = append(errs, field.NotSupported(spec.Child("status"), dr.Spec.Status, specStatuses))
	}
	if !slices.Contains(specSources, dr.Spec.Source) {
		errs = append(errs, field.NotSupported(spec.Child("source"), dr.Spec.Source, specSources))
	}
	if dr.Spec.FirstSeen.IsZero() {
		errs = append(errs, field.Required(spec.Child("firstSeen"), ""))
	}
	for _, p := range []struct{ name, v string }{{"kind", dr.Spec.Workload.Kind}, {"namespace", dr.Spec.Workload.Namespace}, {"name", dr.Spec.Workload.Name}} {
		if p.v == "" {
			errs = append(errs, field.Required(spec.Child("workload", p.name), ""))
		}
	}
	for i, c := range dr.Status.Conditions {
		path := field.NewPath("status", "conditions").Index(i)
		if !conditionReason.MatchString(c.Reason) {
			errs = append(errs, field.Invalid(path.Child("reason"), c.Reason, "must match "+conditionReason.String()))
		}
		if !slices.Contains(conditionStatuses, c.Status) {
			errs = append(errs, field.NotSupported(path.Child("status"), c.Status, conditionStatuses))
		}
		if c.LastTransitionTime.IsZero() {
			errs = append(errs, field.Required(path.Child("lastTransitionTime"), ""))
		}
		if len(c.Message) > 32768 {
			errs = append(errs, field.TooLong(path.Child("message"), "", 32768))
		}
	}
	for i, s := range dr.Status.Sinks {
		if s.Sink == "" {
			errs = append(errs, field.Required(field.NewPath("status", "sinks").Index(i).Child("sink"), ""))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("DeploymentRecord").GroupKind(), dr.Name, errs)
	}
	return nil
}

// clock is the ledger's clock; operations move it.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
}

func newLedger(s *apiServer, c *clock) *Ledger {
	return &Ledger{Client: s, Reader: s, Namespace: namespace, Sink: SinkGitHub, Now: c.now}
}

// get reads the ledger's object of r's key.
func get(t *testing.T, s *apiServer, r record.Record) *v1alpha1.DeploymentRecord {
	t.Helper()
	var dr v1alpha1.DeploymentRecord
	if err := s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: Name(r.Key())}, &dr); err != nil {
		t.Fatalf("reading the ledger record of %s: %v", r.DeploymentName, err)
	}
	return &dr
}

// timeEqual compares times as instants: objects read back from the fake client carry the local time zone.
var timeEqual = cmp.Comparer(func(a, b metav1.Time) bool { return a.Equal(&b) })

// op is one call of the ledger at a time of its clock.
type op struct {
	at   time.Time
	call func(ctx context.Context, l *Ledger) error
}

func put(at time.Time, r record.Record, m Meta) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.Put(ctx, r, m) }}
}

func delivered(at time.Time, r record.Record) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.Delivered(ctx, r) }}
}

func failed(at time.Time, r record.Record, err error, attempts int, next time.Time) op {
	return op{at: at, call: func(ctx context.Context, l *Ledger) error { return l.Failed(ctx, r, err, attempts, next) }}
}

func apply(t *testing.T, l *Ledger, c *clock, ops []op) {
	t.Helper()
	for i, o := range ops {
		c.set(o.at)
		if err := o.call(t.Context(), l); err != nil {
			t.Fatalf("operation %d: %v", i+1, err)
		}
	}
}

func TestPut(t *testing.T) {
	later := t1.Add(time.Hour)
	tests := []struct {
		name   string
		before []op // applied first; the object's resourceVersion is taken after them
		put    op
		// wantErr is an errors.Is target; the object is not written then.
		wantErr        error
		wantWrite      bool
		want           v1alpha1.DeploymentRecordSpec
		wantGeneration int64
	}{
		{
			name:           "creates",
			put:            put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook)),
			wantWrite:      true,
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 1,
		},
		{
			name:           "creates without a source: informer",
			put:            put(t1, recA, decidedBy(0, "")),
			wantWrite:      true,
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceInformer), t1),
			wantGeneration: 1,
		},
		{
			name:           "equal record, later: no write, first sighting and source kept",
			before:         []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			put:            put(later, recA, decidedBy(0, v1alpha1.SourceInformer)),
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 1,
		},
		{
			name:           "equal record without a pod start: no write, the pod start kept",
			before:         []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			put:            put(later, recA, decidedBy(noPod, v1alpha1.SourceLedger)),
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 1,
		},
		{
			name:           "same digest, new tags: spec updated, first sighting and source kept",
			before:         []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			put:            put(later, withTags(recA, map[string]string{"team": "payments"}), decidedBy(0, v1alpha1.SourceInformer)),
			wantWrite:      true,
			want:           wantSpec(withTags(recA, map[string]string{"team": "payments"}), decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 2,
		},
		{
			name:           "new digest from a newer pod: spec updated, first sighting and source reset",
			before:         []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			put:            put(later, recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)),
			wantWrite:      true,
			want:           wantSpec(recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer), later),
			wantGeneration: 2,
		},
		{
			name:           "new digest from a pod that started in the same second: spec updated",
			before:         []op{put(t1, recA, decidedBy(5*time.Minute, v1alpha1.SourceWebhook))},
			put:            put(later, recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)),
			wantWrite:      true,
			want:           wantSpec(recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer), later),
			wantGeneration: 2,
		},
		{
			name:           "new digest from an older pod: ErrOlder",
			before:         []op{put(t1, recB, decidedBy(5*time.Minute, v1alpha1.SourceWebhook))},
			put:            put(later, recA, decidedBy(0, v1alpha1.SourceInformer)),
			wantErr:        ErrOlder,
			want:           wantSpec(recB, decidedBy(5*time.Minute, v1alpha1.SourceWebhook), t1),
			wantGeneration: 1,
		},
		{
			name:           "new digest without a pod start: spec updated, the pod start kept",
			before:         []op{put(t1, recB, decidedBy(5*time.Minute, v1alpha1.SourceWebhook))},
			put:            put(later, recA, decidedBy(noPod, v1alpha1.SourceLedger)),
			wantWrite:      true,
			want:           wantSpec(recA, decidedBy(5*time.Minute, v1alpha1.SourceLedger), later),
			wantGeneration: 2,
		},
		{
			name:           "decommissioned: the pod start, first sighting and source kept",
			before:         []op{put(t1, recA, decidedBy(5*time.Minute, v1alpha1.SourceWebhook))},
			put:            put(later, decommissioned(recA), decidedBy(noPod, v1alpha1.SourceLedger)),
			wantWrite:      true,
			want:           wantSpec(decommissioned(recA), decidedBy(5*time.Minute, v1alpha1.SourceWebhook), t1),
			wantGeneration: 2,
		},
		{
			name:           "decommissioned with a pod start: the deciding pod's start kept",
			before:         []op{put(t1, recA, decidedBy(5*time.Minute, v1alpha1.SourceWebhook))},
			put:            put(later, decommissioned(recA), decidedBy(time.Hour, v1alpha1.SourceLedger)),
			wantWrite:      true,
			want:           wantSpec(decommissioned(recA), decidedBy(5*time.Minute, v1alpha1.SourceWebhook), t1),
			wantGeneration: 2,
		},
		{
			name: "an older pod's digest after a decommission: deployed again",
			before: []op{
				put(t1, recB, decidedBy(5*time.Minute, v1alpha1.SourceWebhook)),
				put(t1, decommissioned(recB), decidedBy(noPod, v1alpha1.SourceLedger)),
			},
			put:            put(later, recA, decidedBy(0, v1alpha1.SourceInformer)),
			wantWrite:      true,
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceInformer), later),
			wantGeneration: 3,
		},
		{
			name: "decommissioned twice: no write",
			before: []op{
				put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook)),
				put(t1, decommissioned(recA), decidedBy(noPod, v1alpha1.SourceLedger)),
			},
			put:            put(later, decommissioned(recA), decidedBy(noPod, v1alpha1.SourceLedger)),
			want:           wantSpec(decommissioned(recA), decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 2,
		},
		{
			name:           "pod start and first sighting kept to the second, as the API stores them",
			put:            put(t1.Add(700*time.Millisecond), recA, decidedBy(300*time.Millisecond, v1alpha1.SourceWebhook)),
			wantWrite:      true,
			want:           wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1),
			wantGeneration: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{}
			l := newLedger(s, c)
			apply(t, l, c, tt.before)
			rv, writes := "", s.writeCount()
			if len(tt.before) > 0 {
				rv = get(t, s, recA).ResourceVersion
			}

			c.set(tt.put.at)
			err := tt.put.call(t.Context(), l)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put() error = %v, want %v", err, tt.wantErr)
			}

			dr := get(t, s, recA)
			if diff := cmp.Diff(tt.want, dr.Spec, timeEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("spec mismatch (-want +got):\n%s", diff)
			}
			if dr.Generation != tt.wantGeneration {
				t.Errorf("generation = %d, want %d", dr.Generation, tt.wantGeneration)
			}
			if wrote := dr.ResourceVersion != rv || s.writeCount() != writes; wrote != tt.wantWrite {
				t.Errorf("written = %t (resourceVersion %q → %q, %d writes), want %t",
					wrote, rv, dr.ResourceVersion, s.writeCount()-writes, tt.wantWrite)
			}
		})
	}
}

func TestPutErrors(t *testing.T) {
	errDown := errors.New("connection refused")
	conflict := apierrors.NewConflict(gr, "x", errors.New("the object has been modified"))
	invalid := recB
	invalid.Digest = "sha256:BAD"
	tests := []struct {
		name    string
		before  []op
		fail    map[string][]error
		put     record.Record // default recB
		wantErr func(error) bool
		want    *v1alpha1.DeploymentRecordSpec // nil: no object
	}{
		{
			name:   "read fails: wrapped, not written",
			before: []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			fail:   map[string][]error{"get": {errDown}},
			wantErr: func(err error) bool {
				return errors.Is(err, errDown) && strings.Contains(err.Error(), "reading ledger record")
			},
			want: new(wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1)),
		},
		{
			name: "create fails: wrapped",
			fail: map[string][]error{"create": {errDown}},
			wantErr: func(err error) bool {
				return errors.Is(err, errDown) && strings.Contains(err.Error(), "creating ledger record")
			},
		},
		{
			name:   "update fails: wrapped",
			before: []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			fail:   map[string][]error{"update": {errDown}},
			wantErr: func(err error) bool {
				return errors.Is(err, errDown) && strings.Contains(err.Error(), "updating ledger record")
			},
			want: new(wantSpec(recA, decidedBy(0, v1alpha1.SourceWebhook), t1)),
		},
		{
			name:   "update conflicts twice: read again and retried",
			before: []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			fail:   map[string][]error{"update": {conflict, conflict}},
			want:   new(wantSpec(recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer), t1)),
		},
		{
			name:   "deleted between the read and the update (the retention): read again and written",
			before: []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
			fail:   map[string][]error{"update": {apierrors.NewNotFound(gr, Name(recA.Key()))}},
			want:   new(wantSpec(recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer), t1)),
		},
		{
			name: "record the API server rejects: its Invalid error, wrapped",
			put:  invalid,
			wantErr: func(err error) bool {
				return apierrors.IsInvalid(err) && strings.Contains(err.Error(), "creating ledger record")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{}
			l := newLedger(s, c)
			apply(t, l, c, tt.before)
			for op, errs := range tt.fail {
				s.failNext(op, errs...)
			}
			r := tt.put
			if r.Digest == "" {
				r = recB
			}
			err := l.Put(t.Context(), r, decidedBy(5*time.Minute, v1alpha1.SourceInformer))
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && (err == nil || !tt.wantErr(err)) {
				t.Fatalf("Put() error = %v", err)
			}
			var dr v1alpha1.DeploymentRecord
			err = s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: Name(recB.Key())}, &dr)
			if tt.want == nil {
				if !apierrors.IsNotFound(err) {
					t.Errorf("Get() error = %v, want NotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tt.want, dr.Spec, timeEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("spec mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// condition is the Synced condition without its transition time.
type condition struct {
	Status             metav1.ConditionStatus
	Reason, Message    string
	ObservedGeneration int64
}

func syncedCondition(dr *v1alpha1.DeploymentRecord) *condition {
	c := apimeta.FindStatusCondition(dr.Status.Conditions, v1alpha1.ConditionSynced)
	if c == nil {
		return nil
	}
	return &condition{Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: c.ObservedGeneration}
}

func accepted(gen int64) *condition {
	return &condition{Status: metav1.ConditionTrue, Reason: "Accepted", Message: "every sink accepted the record", ObservedGeneration: gen}
}

func pending(gen int64) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: "Pending", Message: "github: not accepted yet", ObservedGeneration: gen}
}

func postFailed(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: "PostFailed", Message: "github: " + msg, ObservedGeneration: gen}
}

func credentialsRefused(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: ReasonCredentialsRefused, Message: "github: " + msg, ObservedGeneration: gen}
}

func notAttestedCondition(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: ReasonNotAttested, Message: "github: " + msg, ObservedGeneration: gen}
}

func misconfiguredCondition(gen int64, msg string) *condition {
	return &condition{Status: metav1.ConditionFalse, Reason: ReasonMisconfigured, Message: "github: " + msg, ObservedGeneration: gen}
}

// orgNotFound is a sink's error for an organization that does not exist, as github.OrganizationError.
type orgNotFound struct{}

func (orgNotFound) Error() string {
	return `organization "octo-orgg" not found at https://api.github.com`
}
func (orgNotFound) Misconfigured() bool { return true }

// TestCredentialsPrefix ties the ledger's recognition of a refusal to the text of sink.CredentialsError.
func TestCredentialsPrefix(t *testing.T) {
	err := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"})
	got := lastError(err, 1024)
	if !strings.HasPrefix(got, credentialsPrefix) {
		t.Errorf("lastError() = %q, want it to start with %q", got, credentialsPrefix)
	}
	if r := failureReason(got, "PostFailed"); r != ReasonCredentialsRefused {
		t.Errorf("failureReason(%q) = %q, want %q", got, r, ReasonCredentialsRefused)
	}
	if r := failureReason("post x: 503 Service Unavailable", "PostFailed"); r != "PostFailed" {
		t.Errorf("failureReason(503) = %q, want PostFailed", r)
	}
}

func ptrTime(t time.Time) *metav1.Time { return new(metav1.NewTime(t)) }

// TestDelivery drives a record through puts, deliveries and failures, and checks the sink status, the Synced
// condition and what List makes of them.
func TestDelivery(t *testing.T) {
	errUnavailable := errors.New("post ghcr.io/octo-org/web to github: 503 Service Unavailable")
	refused := &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"}
	errRefused := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", refused)
	later, retry := t1.Add(time.Minute), t1.Add(2*time.Minute)
	m := decidedBy(0, v1alpha1.SourceWebhook)
	mB := decidedBy(5*time.Minute, v1alpha1.SourceInformer)
	// 1201 bytes; byte 1024 is in the middle of a character, which JSON would turn into U+FFFD.
	long := "x" + strings.Repeat("é", 600)
	tagged := withTags(recA, map[string]string{"team": "payments"})
	errNotFound := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", &sink.NotFoundError{Message: "no artifacts found"})
	errMisconfigured := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", orgNotFound{})
	notAttestedMsg := func(digest string, next time.Time) string {
		return "no attestation for ghcr.io/octo-org/web@" + digest + ", tried again at " + next.Format(time.RFC3339) + " (" + errNotFound.Error() + ")"
	}
	decB := decommissioned(recB)
	// have is want as the sink holds it: the name, digest, version and status it accepted (held), the rest
	// from the spec.
	have := func(want, held record.Record) *record.Record {
		want.Name, want.Digest, want.Version, want.Status = held.Name, held.Digest, held.Version, held.Status
		return &want
	}
	tests := []struct {
		name          string
		ops           []op
		wantSinks     []v1alpha1.SinkStatus
		wantCondition *condition
		want          Entry
	}{
		{
			name: "never delivered: no status, not synced",
			ops:  []op{put(t1, recA, m)},
			want: Entry{Want: recA, Meta: m},
		},
		{
			name:          "delivered: synced",
			ops:           []op{put(t1, recA, m), delivered(later, recA)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(later)}},
			wantCondition: accepted(1),
			want:          Entry{Want: recA, Meta: m, Have: &recA, Synced: true},
		},
		{
			name:          "failed, retried later: attempts, error and next retry; not synced",
			ops:           []op{put(t1, recA, m), failed(later, recA, errUnavailable, 3, retry)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 3, LastError: errUnavailable.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: postFailed(1, errUnavailable.Error()),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name:          "failed for good: no next retry",
			ops:           []op{put(t1, recA, m), failed(later, recA, errUnavailable, 1, time.Time{})},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: errUnavailable.Error()}},
			wantCondition: postFailed(1, errUnavailable.Error()),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name:          "credentials refused: the refusal's own text, reason CredentialsRefused",
			ops:           []op{put(t1, recA, m), failed(later, recA, errRefused, 1, retry)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: refused.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: credentialsRefused(1, refused.Error()),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name:          "credentials refused, then a new digest: still CredentialsRefused",
			ops:           []op{put(t1, recA, m), failed(later, recA, errRefused, 1, retry), put(retry, recB, mB)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: refused.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: credentialsRefused(2, refused.Error()),
			want:          Entry{Want: recB, Meta: mB},
		},
		{
			name:          "credentials refused, then delivered: cleared",
			ops:           []op{put(t1, recA, m), failed(t1, recA, errRefused, 1, retry), delivered(later, recA)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(later)}},
			wantCondition: accepted(1),
			want:          Entry{Want: recA, Meta: m, Have: &recA, Synced: true},
		},
		{
			name:          "failed with a long error: cut on a character boundary",
			ops:           []op{put(t1, recA, m), failed(later, recA, errors.New(long), 1, time.Time{})},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: long[:1023] + "…"}},
			wantCondition: postFailed(1, long[:1023]+"…"),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name:          "failed, then delivered: the failure cleared",
			ops:           []op{put(t1, recA, m), failed(t1, recA, errUnavailable, 2, retry), delivered(later, recA)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(later)}},
			wantCondition: accepted(1),
			want:          Entry{Want: recA, Meta: m, Have: &recA, Synced: true},
		},
		{
			name:          "delivered, then a new digest: pending, the sink holds the older one",
			ops:           []op{put(t1, recA, m), delivered(t1, recA), put(later, recB, mB)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(t1)}},
			wantCondition: pending(2),
			want:          Entry{Want: recB, Meta: mB, Have: have(recB, recA)},
		},
		{
			name: "new digest delivered: synced at its generation",
			ops:  []op{put(t1, recA, m), delivered(t1, recA), put(later, recB, mB), delivered(retry, recB)},
			wantSinks: []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recB.Name, Digest: dB, Version: recB.Version, Status: "deployed", ObservedGeneration: 2,
				LastSynced: ptrTime(retry)}},
			wantCondition: accepted(2),
			want:          Entry{Want: recB, Meta: mB, Have: &recB, Synced: true},
		},
		{
			name:          "an older record delivered after the spec changed: not synced",
			ops:           []op{put(t1, recA, m), put(later, recB, mB), delivered(retry, recA)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", LastSynced: ptrTime(retry)}},
			wantCondition: pending(2),
			want:          Entry{Want: recB, Meta: mB, Have: have(recB, recA)},
		},
		{
			name: "decommission not delivered yet: the sink holds it deployed",
			ops:  []op{put(t1, recA, m), delivered(t1, recA), put(later, decommissioned(recA), decidedBy(noPod, v1alpha1.SourceLedger))},
			wantSinks: []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1,
				LastSynced: ptrTime(t1)}},
			wantCondition: pending(2),
			want:          Entry{Want: decommissioned(recA), Meta: m, Have: &recA},
		},
		{
			name: "decommission delivered: synced",
			ops: []op{put(t1, recA, m), delivered(t1, recA), put(later, decommissioned(recA), decidedBy(noPod, v1alpha1.SourceLedger)),
				delivered(retry, decommissioned(recA))},
			wantSinks: []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "decommissioned", ObservedGeneration: 2,
				LastSynced: ptrTime(retry)}},
			wantCondition: accepted(2),
			want:          Entry{Want: decommissioned(recA), Meta: m, Have: new(decommissioned(recA)), Synced: true},
		},
		{
			// The status keeps only the digest and status the sink accepted: Have takes the rest from the spec,
			// and only the generation tells that the tags are not delivered (the tracker does not seed it).
			name:          "tags changed, not delivered: pending, Have equals Want yet not synced",
			ops:           []op{put(t1, recA, m), delivered(t1, recA), put(later, tagged, m)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(t1)}},
			wantCondition: pending(2),
			want:          Entry{Want: tagged, Meta: m, Have: &tagged},
		},
		{
			name:          "not attested: reason NotAttested, the artifact remembered with its next attempt",
			ops:           []op{put(t1, recA, m), failed(later, recA, errNotFound, 1, retry)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: errNotFound.Error(), NextRetry: ptrTime(retry), NotAttested: &v1alpha1.NotAttested{Name: recA.Name, Digest: dA, Since: metav1.NewTime(later)}}},
			wantCondition: notAttestedCondition(1, notAttestedMsg(dA, retry)),
			want:          Entry{Want: recA, Meta: m, NotAttested: &NotAttested{Name: recA.Name, Digest: dA, Until: retry, Message: errNotFound.Error()}},
		},
		{
			name: "not attested again after its retry: since the first answer, until the next attempt",
			ops:  []op{put(t1, recA, m), failed(later, recA, errNotFound, 1, retry), failed(retry, recA, errNotFound, 1, retry.Add(time.Hour))},
			wantSinks: []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: errNotFound.Error(), NextRetry: ptrTime(retry.Add(time.Hour)),
				NotAttested: &v1alpha1.NotAttested{Name: recA.Name, Digest: dA, Since: metav1.NewTime(later)}}},
			wantCondition: notAttestedCondition(1, notAttestedMsg(dA, retry.Add(time.Hour))),
			want:          Entry{Want: recA, Meta: m, NotAttested: &NotAttested{Name: recA.Name, Digest: dA, Until: retry.Add(time.Hour), Message: errNotFound.Error()}},
		},
		{
			name:          "not attested, then attested and delivered: cleared",
			ops:           []op{put(t1, recA, m), failed(t1, recA, errNotFound, 1, later), delivered(later, recA)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, LastSynced: ptrTime(later)}},
			wantCondition: accepted(1),
			want:          Entry{Want: recA, Meta: m, Have: &recA, Synced: true},
		},
		{
			name:          "not attested, then another failure: no longer NotAttested",
			ops:           []op{put(t1, recA, m), failed(t1, recA, errNotFound, 1, later), failed(later, recA, errUnavailable, 2, retry)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 2, LastError: errUnavailable.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: postFailed(1, errUnavailable.Error()),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name: "new digest not attested, then the workload deleted: the decommission of the digest the sink holds syncs the key",
			ops: []op{put(t1, recA, m), delivered(t1, recA), put(later, recB, mB), failed(later, recB, errNotFound, 1, retry.Add(time.Hour)),
				put(retry, decB, decidedBy(noPod, v1alpha1.SourceLedger)), delivered(retry, decommissioned(recA))},
			wantSinks: []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "decommissioned",
				ObservedGeneration: 3, LastSynced: ptrTime(retry)}},
			wantCondition: accepted(3),
			want:          Entry{Want: decB, Meta: mB, Have: new(decommissioned(recA)), Synced: true},
		},
		{
			name:          "sink misconfigured: reason Misconfigured, the sink's own text",
			ops:           []op{put(t1, recA, m), failed(later, recA, errMisconfigured, 1, retry)},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Attempts: 1, LastError: misconfiguredPrefix + orgNotFound{}.Error(), NextRetry: ptrTime(retry)}},
			wantCondition: misconfiguredCondition(1, misconfiguredPrefix+orgNotFound{}.Error()),
			want:          Entry{Want: recA, Meta: m},
		},
		{
			name:          "failure of a new digest: the record the sink holds stays",
			ops:           []op{put(t1, recA, m), delivered(t1, recA), put(later, recB, mB), failed(retry, recB, errUnavailable, 1, time.Time{})},
			wantSinks:     []v1alpha1.SinkStatus{{Sink: SinkGitHub, Name: recA.Name, Digest: dA, Version: recA.Version, Status: "deployed", ObservedGeneration: 1, Attempts: 1, LastError: errUnavailable.Error(), LastSynced: ptrTime(t1)}},
			wantCondition: postFailed(2, errUnavailable.Error()),
			want:          Entry{Want: recB, Meta: mB, Have: have(recB, recA)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{}
			l := newLedger(s, c)
			apply(t, l, c, tt.ops)

			dr := get(t, s, recA)
			if diff := cmp.Diff(tt.wantSinks, dr.Status.Sinks, timeEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sink status mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCondition, syncedCondition(dr)); diff != "" {
				t.Errorf("Synced condition mismatch (-want +got):\n%s", diff)
			}
			if tt.wantCondition != nil && dr.Status.ObservedGeneration != dr.Generation {
				t.Errorf("status.observedGeneration = %d, want %d", dr.Status.ObservedGeneration, dr.Generation)
			}
			got, err := l.List(t.Context())
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			if diff := cmp.Diff([]Entry{tt.want}, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusUnchangedNotWritten reports the same outcome twice (a record reported again while it waits for a
// paused sink, or after a restart): the second report writes nothing.
func TestStatusUnchangedNotWritten(t *testing.T) {
	s := newAPIServer(t, true)
	c := &clock{}
	l := newLedger(s, c)
	errNotFound := &sink.NotFoundError{Message: "no artifacts found"}
	next := t1.Add(time.Hour)
	apply(t, l, c, []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook)), failed(t1, recA, errNotFound, 1, next)})
	before := s.writeCount()
	apply(t, l, c, []op{failed(t1.Add(time.Minute), recA, errNotFound, 1, next)})
	if got := s.writeCount(); got != before {
		t.Errorf("%d writes for the same outcome again, want none", got-before)
	}
}

func TestStatusErrors(t *testing.T) {
	errDown := errors.New("connection refused")
	conflict := apierrors.NewConflict(gr, "x", errors.New("the object has been modified"))
	tests := []struct {
		name          string
		put           bool // the record is in the ledger
		fail          map[string][]error
		wantErr       func(error) bool
		wantCondition *condition
	}{
		{
			name: "no such record: NotFound, wrapped",
			wantErr: func(err error) bool {
				return apierrors.IsNotFound(err) && strings.Contains(err.Error(), "reading ledger record")
			},
		},
		{
			name: "status update fails: wrapped",
			put:  true,
			fail: map[string][]error{"status": {errDown}},
			wantErr: func(err error) bool {
				return errors.Is(err, errDown) && strings.Contains(err.Error(), "updating the status")
			},
			wantCondition: nil,
		},
		{
			name:          "status update conflicts: read again and retried",
			put:           true,
			fail:          map[string][]error{"status": {conflict}},
			wantCondition: accepted(1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{at: t1}
			l := newLedger(s, c)
			if tt.put {
				apply(t, l, c, []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))})
			}
			for op, errs := range tt.fail {
				s.failNext(op, errs...)
			}
			err := l.Delivered(t.Context(), recA)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && (err == nil || !tt.wantErr(err)) {
				t.Fatalf("Delivered() error = %v", err)
			}
			if !tt.put {
				return
			}
			if diff := cmp.Diff(tt.wantCondition, syncedCondition(get(t, s, recA))); diff != "" {
				t.Errorf("Synced condition mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPutRefreshesSynced: a spec change shows the record pending at once, not synced until the sink accepts it;
// a refresh that fails is retried by the next Put of the same record, which writes nothing else.
func TestPutRefreshesSynced(t *testing.T) {
	errDown := errors.New("connection refused")
	s := newAPIServer(t, true)
	c := &clock{}
	l := newLedger(s, c)
	apply(t, l, c, []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook)), delivered(t1, recA)})

	s.failNext("status", errDown)
	c.set(t1.Add(time.Minute))
	if err := l.Put(t.Context(), recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)); !errors.Is(err, errDown) {
		t.Fatalf("Put() error = %v, want %v", err, errDown)
	}
	if diff := cmp.Diff(accepted(1), syncedCondition(get(t, s, recA))); diff != "" {
		t.Errorf("Synced condition after a failed refresh mismatch (-want +got):\n%s", diff)
	}
	if err := l.Put(t.Context(), recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)); err != nil {
		t.Fatalf("Put() again error = %v", err)
	}
	dr := get(t, s, recA)
	if diff := cmp.Diff(pending(2), syncedCondition(dr)); diff != "" {
		t.Errorf("Synced condition mismatch (-want +got):\n%s", diff)
	}
	writes := s.writeCount()
	if err := l.Put(t.Context(), recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)); err != nil {
		t.Fatalf("Put() a third time error = %v", err)
	}
	if n := s.writeCount() - writes; n != 0 {
		t.Errorf("Put() of an up-to-date record wrote %d times, want 0", n)
	}
}

// TestPlainFakeClient documents what controller-runtime's fake client does with metadata.generation — nothing:
// it stays 0 on create and on spec updates. The Synced logic must not rely on it alone: a new digest is not
// shown synced before the sink accepts it. A change of another field (tags) is not detectable without
// generations; TestDelivery covers it with the API server's generations.
func TestPlainFakeClient(t *testing.T) {
	s := newAPIServer(t, false)
	c := &clock{}
	l := newLedger(s, c)
	steps := []struct {
		name          string
		op            op
		wantCondition *condition
		wantSynced    bool
	}{
		{name: "created", op: put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))},
		{name: "delivered", op: delivered(t1, recA), wantCondition: accepted(0), wantSynced: true},
		{name: "new digest", op: put(t1, recB, decidedBy(5*time.Minute, v1alpha1.SourceWebhook)), wantCondition: pending(0)},
		{name: "older record delivered late", op: delivered(t1, recA), wantCondition: pending(0)},
		{name: "new digest delivered", op: delivered(t1, recB), wantCondition: accepted(0), wantSynced: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			apply(t, l, c, []op{st.op})
			dr := get(t, s, recA)
			if dr.Generation != 0 {
				t.Errorf("generation = %d; the fake client maintains it now: test with its generations", dr.Generation)
			}
			if diff := cmp.Diff(st.wantCondition, syncedCondition(dr)); diff != "" {
				t.Errorf("Synced condition mismatch (-want +got):\n%s", diff)
			}
			entries, err := l.List(t.Context())
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			if len(entries) != 1 || entries[0].Synced != st.wantSynced {
				t.Errorf("List() = %+v, want one entry, synced %t", entries, st.wantSynced)
			}
		})
	}
}

func TestList(t *testing.T) {
	other := rec(dB, "2.0")
	other.DeploymentName = "shop/api/app"
	otherMeta := Meta{Workload: v1alpha1.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "api"}, Container: "app",
		PodStarted: t0, Source: v1alpha1.SourceInformer}
	foreign := &v1alpha1.DeploymentRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: Name(recB.Key())},
		Spec:       wantSpec(recB, decidedBy(0, v1alpha1.SourceWebhook), t1),
	}
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		fail    bool
		want    []Entry
		wantErr error
	}{
		{
			name: "every record of the namespace, none of another",
			want: []Entry{
				{Want: recA, Meta: decidedBy(0, v1alpha1.SourceWebhook), Have: &recA, Synced: true},
				{Want: other, Meta: otherMeta},
			},
		},
		{name: "list fails: wrapped", fail: true, wantErr: errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true, foreign)
			c := &clock{}
			l := newLedger(s, c)
			apply(t, l, c, []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook)), delivered(t1, recA), put(t1, other, otherMeta)})
			if tt.fail {
				s.failNext("list", errDown)
			}
			got, err := l.List(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("List() error = %v, want %v", err, tt.wantErr)
			}
			sortEntries := cmpopts.SortSlices(func(a, b Entry) bool { return a.Want.DeploymentName < b.Want.DeploymentName })
			if diff := cmp.Diff(tt.want, got, sortEntries, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestName(t *testing.T) {
	key := func(parts ...string) record.Key {
		return record.Key{LogicalEnvironment: parts[0], PhysicalEnvironment: parts[1], Cluster: parts[2], DeploymentName: parts[3]}
	}
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name string
		a, b record.Key
	}{
		{name: "separator inside a part", a: key("a|b", "", "c", "d"), b: key("a", "b", "c", "d")},
		{name: "boundary shifted", a: key("ab", "c", "x", "y"), b: key("a", "bc", "x", "y")},
		{name: "empty part moved", a: key("", "a", "b", "c"), b: key("a", "", "b", "c")},
		{name: "parts swapped", a: key("production", "eu-west-1", "prod-1", "shop/web/app"), b: key("eu-west-1", "production", "prod-1", "shop/web/app")},
		{name: "deployment name", a: key("production", "", "prod-1", "shop/web/app"), b: key("production", "", "prod-1", "shop/web/proxy")},
		{name: "long parts", a: key(long, long, long, long+"a"), b: key(long, long, long, long+"b")},
		{name: "unicode", a: key("prodüction", "", "c", "shop/wéb/app"), b: key("production", "", "c", "shop/web/app")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Name(tt.a), Name(tt.b)
			if a == b {
				t.Errorf("Name(%q) = Name(%q) = %s, want distinct names", tt.a, tt.b, a)
			}
			for _, n := range []string{a, b} {
				// A DNS-1123 label is stricter than the subdomain object names need: it also fits label values.
				if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
					t.Errorf("Name() = %q is not a valid object name: %v", n, errs)
				}
			}
			if again := Name(tt.a); again != a {
				t.Errorf("Name() not stable: %s, then %s", a, again)
			}
		})
	}
	// The names of existing ledgers depend on the scheme: changing it orphans every record.
	if got, want := Name(recA.Key()), "dr-11a69413a764e2d69fc9172e"; got != want {
		t.Errorf("Name(%+v) = %s, want %s", recA.Key(), got, want)
	}
}

// TestPutCreatesFirst: a key the ledger is not known to hold is created without a read; one it lists, or one
// written by another process meanwhile, is read and updated.
func TestPutCreatesFirst(t *testing.T) {
	errDown := errors.New("connection refused")
	s := newAPIServer(t, true)
	c := &clock{at: t1}
	l := newLedger(s, c)
	s.failNext("get", errDown) // a read would fail the write
	if err := l.Put(t.Context(), recA, decidedBy(0, v1alpha1.SourceWebhook)); err != nil {
		t.Fatalf("Put() of a new key = %v, want it created without a read", err)
	}
	var dr v1alpha1.DeploymentRecord
	if err := s.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: Name(recA.Key())}, &dr); !errors.Is(err, errDown) {
		t.Fatalf("the failing read is still due: %v, want it unused by Put", err)
	}
	// Another process's ledger object: this one does not know it, creates, is told it exists, reads, updates.
	other := newLedger(s, c)
	if err := other.Put(t.Context(), recB, decidedBy(5*time.Minute, v1alpha1.SourceInformer)); err != nil {
		t.Fatalf("Put() of a key written elsewhere = %v", err)
	}
	if got := get(t, s, recB).Spec.Digest; got != recB.Digest {
		t.Errorf("digest %s, want %s", got, recB.Digest)
	}
	// Listed: known, read before it is written.
	fresh := newLedger(s, c)
	if _, err := fresh.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.failNext("get", errDown)
	if err := fresh.Put(t.Context(), recA, decidedBy(10*time.Minute, v1alpha1.SourceInformer)); !errors.Is(err, errDown) {
		t.Errorf("Put() of a listed key = %v, want the read's error", err)
	}
}
