package ledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// pager makes the fake client's List paginate as the API server does with limit and continue (the fake ignores
// both): items in name order, at most limit of them per page, and a continue token that resumes after the last
// item served, so that deleting served items does not shift the next page. It records the limit of each page
// it serves.
type pager struct {
	mu     sync.Mutex
	limits []int64
}

func (p *pager) list(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	limit, after := lo.Limit, lo.Continue
	lo.Limit, lo.Continue = 0, ""
	if err := c.List(ctx, list, &lo); err != nil {
		return err
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return err
	}
	name := func(o runtime.Object) string { m, _ := apimeta.Accessor(o); return m.GetName() }
	slices.SortFunc(items, func(a, b runtime.Object) int { return cmp.Compare(name(a), name(b)) })
	if after != "" {
		items = slices.DeleteFunc(items, func(o runtime.Object) bool { return name(o) <= after })
	}
	next := ""
	if limit > 0 && int64(len(items)) > limit {
		items = items[:limit]
		next = name(items[limit-1])
	}
	if err := apimeta.SetList(list, items); err != nil {
		return err
	}
	list.SetContinue(next)
	p.mu.Lock()
	p.limits = append(p.limits, limit)
	p.mu.Unlock()
	return nil
}

// pages returns the limits of the pages served so far, and forgets them.
func (p *pager) pages() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.limits
	p.limits = nil
	return out
}

func TestListPages(t *testing.T) {
	tests := []struct {
		name      string
		records   int
		pageSize  int
		wantPages []int64
	}{
		{name: "default page size: one page", records: 3, wantPages: []int64{defaultPageSize}},
		{name: "several pages", records: 5, pageSize: 2, wantPages: []int64{2, 2, 2}},
		{name: "the last page full", records: 4, pageSize: 2, wantPages: []int64{2, 2}},
		{name: "empty ledger", records: 0, pageSize: 2, wantPages: []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{at: t1}
			l := newLedger(s, c)
			var want []string
			for i := range tt.records {
				r := recA
				r.DeploymentName = fmt.Sprintf("shop/job-%d/app", i)
				apply(t, l, c, []op{put(t1, r, decidedBy(0, v1alpha1.SourceWebhook))})
				want = append(want, r.DeploymentName)
			}
			l.pageSize = tt.pageSize
			s.pager.pages()
			entries, err := l.List(t.Context())
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Want.DeploymentName)
			}
			slices.Sort(got)
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("List() records (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(tt.wantPages, s.pager.pages()); diff != "" {
				t.Errorf("pages read, by limit (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a page fails: the listing fails", func(t *testing.T) {
		s := newAPIServer(t, true)
		c := &clock{at: t1}
		l := newLedger(s, c)
		for i := range 3 {
			r := recA
			r.DeploymentName = fmt.Sprintf("shop/job-%d/app", i)
			apply(t, l, c, []op{put(t1, r, decidedBy(0, v1alpha1.SourceWebhook))})
		}
		l.pageSize = 2
		s.failNext("list", nil, apierrors.NewResourceExpired("the continue token expired"))
		if _, err := l.List(t.Context()); !apierrors.IsResourceExpired(err) {
			t.Errorf("List() error = %v, want the expired continue token", err)
		}
	})
}

func TestListRolloutsPages(t *testing.T) {
	s := newRolloutServer(t, true)
	c := &clock{at: t1}
	l := newRolloutLedger(s, c)
	const workloads = 5
	for i := range workloads {
		r := ro(1, rollout.PhaseCurrent)
		r.Workload = owner.Workload{Group: "batch", Kind: "Job", Namespace: "ci", Name: fmt.Sprintf("run-%d", i)}
		apply(t, l, c, []op{putRollout(t1, r)})
	}
	l.pageSize = 2
	s.pager.pages()
	entries, err := l.ListRollouts(t.Context())
	if err != nil {
		t.Fatalf("ListRollouts() error = %v", err)
	}
	if len(entries) != workloads {
		t.Errorf("ListRollouts() = %d rollouts, want %d", len(entries), workloads)
	}
	if diff := gocmp.Diff([]int64{2, 2, 2}, s.pager.pages()); diff != "" {
		t.Errorf("pages read by ListRollouts, by limit (-want +got):\n%s", diff)
	}
	// PruneRollouts reads every page before it decides: the highest revision of each workload stays.
	deleted, err := l.PruneRollouts(t.Context(), 1, 0)
	if err != nil || deleted != 0 {
		t.Errorf("PruneRollouts() = %d, %v; want 0, nil", deleted, err)
	}
	if diff := gocmp.Diff([]int64{2, 2, 2}, s.pager.pages()); diff != "" {
		t.Errorf("pages read by PruneRollouts, by limit (-want +got):\n%s", diff)
	}
}
