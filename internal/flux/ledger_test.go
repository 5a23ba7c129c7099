package flux

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func newConfigMapLedger(c client.Client) *ConfigMapLedger {
	return &ConfigMapLedger{Client: c, Reader: c, Namespace: "deployment-tracker"}
}

func TestConfigMapLedger(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	l := newConfigMapLedger(c)
	apps := types.NamespacedName{Namespace: "flux-system", Name: "apps"}
	infra := types.NamespacedName{Namespace: "flux-system", Name: "infra.eu"}

	got, err := l.Load(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("Load of no ConfigMap = %v, %v; want empty", got, err)
	}
	for i, step := range []struct {
		k        types.NamespacedName
		rev      string
		recorded bool
	}{
		{apps, "main@sha1:" + sha1A, true}, // creates the ConfigMap
		{apps, "main@sha1:" + sha1A, false},
		{infra, "main@sha1:" + sha1A, true},
		{apps, "main@sha1:" + sha1B, true},
	} {
		recorded, err := l.Observe(ctx, step.k, step.rev)
		if err != nil || recorded != step.recorded {
			t.Fatalf("step %d: Observe(%s, %s) = %t, %v; want %t", i, step.k, step.rev, recorded, err, step.recorded)
		}
	}
	got, err = l.Load(ctx)
	want := map[types.NamespacedName]string{apps: "main@sha1:" + sha1B, infra: "main@sha1:" + sha1A}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: "deployment-tracker", Name: LedgerName}, &cm); err != nil {
		t.Fatal(err)
	}
	if v := cm.Data["flux-system.infra.eu"]; v != `{"kustomization":"flux-system/infra.eu","revision":"main@sha1:`+sha1A+`"}` {
		t.Errorf("entry of infra.eu = %s", v)
	}
	if err := l.Forget(ctx, apps, types.NamespacedName{Namespace: "x", Name: "never"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Load(ctx); len(got) != 1 || got[infra] == "" {
		t.Errorf("after Forget(apps): %v", got)
	}
}

// TestConfigMapLedgerConflict: of two leaders observing at once, the one that read first gets a conflict, and
// after reading again finds the revision observed.
func TestConfigMapLedgerConflict(t *testing.T) {
	ctx := t.Context()
	k := types.NamespacedName{Namespace: "flux-system", Name: "apps"}
	base := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	other := newConfigMapLedger(base)
	if _, err := other.Observe(ctx, k, "main@sha1:"+sha1A); err != nil {
		t.Fatal(err)
	}
	raced := false
	c := interceptor.NewClient(base.(client.WithWatch), interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if !raced {
				raced = true
				if _, err := other.Observe(ctx, k, "main@sha1:"+sha1B); err != nil {
					return fmt.Errorf("the other leader: %w", err)
				}
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	l := newConfigMapLedger(c)
	if _, err := l.Observe(ctx, k, "main@sha1:"+sha1B); !apierrors.IsConflict(err) {
		t.Fatalf("Observe racing another leader: %v, want a conflict", err)
	}
	if recorded, err := l.Observe(ctx, k, "main@sha1:"+sha1B); err != nil || recorded {
		t.Errorf("Observe again = %t, %v; want false: the other leader observed it", recorded, err)
	}
}

func TestLedgerFull(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	small := newConfigMapLedger(c)
	small.MaxEntries = 10
	ledgers := map[string]struct {
		l   Ledger
		max int
	}{"ConfigMap": {small, 10}, "memory": {&MemoryLedger{}, MaxLedgerEntries}}
	for name, tt := range ledgers {
		l := tt.l
		t.Run(name, func(t *testing.T) {
			for i := range tt.max {
				if _, err := l.Observe(ctx, types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}, "r1"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Observe(ctx, types.NamespacedName{Namespace: "ns", Name: "one-more"}, "r1"); !errors.Is(err, ErrLedgerFull) {
				t.Errorf("Observe of a new Kustomization in a full ledger: %v, want ErrLedgerFull", err)
			}
			if recorded, err := l.Observe(ctx, types.NamespacedName{Namespace: "ns", Name: "7"}, "r2"); err != nil || !recorded {
				t.Errorf("Observe of a known Kustomization in a full ledger = %t, %v; want recorded", recorded, err)
			}
		})
	}
}

func TestLedgerKey(t *testing.T) {
	long := strings.Repeat("a", 253)
	tests := []struct {
		k    types.NamespacedName
		want string
	}{
		{types.NamespacedName{Namespace: "flux-system", Name: "apps"}, "flux-system.apps"},
		{types.NamespacedName{Namespace: "flux-system", Name: "apps.eu-1"}, "flux-system.apps.eu-1"},
	}
	for _, tt := range tests {
		if got := ledgerKey(tt.k); got != tt.want {
			t.Errorf("ledgerKey(%s) = %q, want %q", tt.k, got, tt.want)
		}
	}
	a, b := ledgerKey(types.NamespacedName{Namespace: "ns", Name: long}), ledgerKey(types.NamespacedName{Namespace: "ns", Name: long[:252] + "b"})
	if len(a) != 253 || len(b) != 253 || a == b {
		t.Errorf("long keys %q and %q: want 253 characters each, different", a, b)
	}
}

func TestMemoryLedger(t *testing.T) {
	ctx := t.Context()
	l := &MemoryLedger{}
	k := types.NamespacedName{Namespace: "flux-system", Name: "apps"}
	for i, want := range []bool{true, false} {
		if recorded, err := l.Observe(ctx, k, "r1"); err != nil || recorded != want {
			t.Errorf("Observe #%d = %t, %v; want %t", i, recorded, err, want)
		}
	}
	if err := l.Forget(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Load(ctx); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
}
