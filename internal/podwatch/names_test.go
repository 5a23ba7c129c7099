package podwatch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// informerCache is a cache whose pod informer is NewInformer's, filled by the test; listing it fails.
type informerCache struct {
	cache.Informers
	client.Reader
	pods toolscache.SharedIndexInformer
}

func (c *informerCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.pods, nil
}

func (c *informerCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("listed: the pods were copied out of the cache")
}

func TestNames(t *testing.T) {
	inf := NewInformer(nil, &corev1.Pod{}, 0, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u1"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-2", UID: "u2"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "api-1", UID: "u3"}},
	}
	for _, p := range pods {
		if err := inf.GetIndexer().Add(Compact(p)); err != nil {
			t.Fatal(err)
		}
	}
	c := &informerCache{pods: inf}
	sorted := func(nns []types.NamespacedName) []types.NamespacedName {
		slices.SortFunc(nns, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
		return nns
	}
	all := []types.NamespacedName{{Namespace: "billing", Name: "api-1"}, {Namespace: "shop", Name: "web-1"}, {Namespace: "shop", Name: "web-2"}}
	for _, tc := range []struct {
		namespace string
		want      []types.NamespacedName
	}{
		{"", all},
		{"shop", all[1:]},
		{"empty", []types.NamespacedName{}},
	} {
		got, err := Names(t.Context(), c, tc.namespace)
		if err != nil {
			t.Fatalf("Names(%q) error = %v", tc.namespace, err)
		}
		if diff := cmp.Diff(tc.want, sorted(got)); diff != "" {
			t.Errorf("Names(%q) mismatch (-want +got):\n%s", tc.namespace, diff)
		}
	}

	// A reader that is no informer cache is listed.
	objs := make([]client.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	r := fake.NewClientBuilder().WithObjects(objs...).Build()
	got, err := Names(t.Context(), r, "shop")
	if err != nil {
		t.Fatalf("Names() of a client error = %v", err)
	}
	if diff := cmp.Diff(all[1:], sorted(got)); diff != "" {
		t.Errorf("Names() of a client mismatch (-want +got):\n%s", diff)
	}
}
