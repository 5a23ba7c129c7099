package podwatch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// podServer is the pods API of an API server: lists of its pods, and watches that stream the events given to
// send.
type podServer struct {
	t    *testing.T
	pods []corev1.Pod

	mu       sync.Mutex
	watchers []watcher
}

type watcher struct {
	namespace string // "": all
	events    chan<- []byte
}

func (s *podServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ns := ""
	path := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	if rest, ok := strings.CutPrefix(path, "namespaces/"); ok {
		ns, path, _ = strings.Cut(rest, "/")
	}
	if path != "pods" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") != "true" {
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, ListMeta: metav1.ListMeta{ResourceVersion: "100"}}
		for _, p := range s.pods {
			if ns == "" || p.Namespace == ns {
				list.Items = append(list.Items, p)
			}
		}
		if err := json.NewEncoder(w).Encode(list); err != nil {
			s.t.Errorf("writing the pod list: %v", err)
		}
		return
	}
	events := make(chan []byte, 10)
	s.mu.Lock()
	s.watchers = append(s.watchers, watcher{namespace: ns, events: events})
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-events:
			_, _ = w.Write(e)
			w.(http.Flusher).Flush()
		}
	}
}

// send sends a watch event of pod to the watches of its namespace.
func (s *podServer) send(typ string, pod *corev1.Pod) {
	b, err := json.Marshal(map[string]any{"type": typ, "object": pod})
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watchers {
		if w.namespace == "" || w.namespace == pod.Namespace {
			w.events <- append(b, '\n')
		}
	}
}

// testPods are n pods of testdata/pod.json (as BenchmarkRetained makes them), half in namespace shop, half in
// books.
func testPods(t *testing.T, n int) []corev1.Pod {
	raw, err := os.ReadFile("testdata/pod.json")
	if err != nil {
		t.Fatal(err)
	}
	pods := make([]corev1.Pod, n)
	for i := range pods {
		if err := json.Unmarshal(benchPodJSON(raw, i), &pods[i]); err != nil {
			t.Fatal(err)
		}
		pods[i].APIVersion, pods[i].Kind = "v1", "Pod"
		if i%2 == 1 {
			pods[i].Namespace = "books"
		}
	}
	return pods
}

// TestCacheReadsCompactPodsAsPods runs controller-runtime's cache, as the tracker configures it, against an
// API server's pods: Get, List (by namespace, label, field index) and the informer's events, with one
// namespace, several, and all of them.
func TestCacheReadsCompactPodsAsPods(t *testing.T) {
	for _, tc := range []struct {
		name       string
		namespaces []string // of the cache; none: all
	}{
		{"all namespaces", nil},
		{"two namespaces", []string{"shop", "books"}},
		{"one namespace", []string{"shop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &podServer{t: t, pods: testPods(t, 40)}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{corev1.SchemeGroupVersion})
			mapper.Add(corev1.SchemeGroupVersion.WithKind("Pod"), meta.RESTScopeNamespace)
			mapper.Add(corev1.SchemeGroupVersion.WithKind("PodList"), meta.RESTScopeNamespace) // the multi-namespace cache asks
			opts := cache.Options{
				Scheme: clientgoscheme.Scheme, Mapper: mapper, HTTPClient: hs.Client(),
				DefaultTransform: podwatch.Strip, NewInformer: podwatch.NewInformer,
			}
			if len(tc.namespaces) > 0 {
				opts.DefaultNamespaces = map[string]cache.Config{}
				for _, ns := range tc.namespaces {
					opts.DefaultNamespaces[ns] = cache.Config{}
				}
			}
			c, err := cache.New(&rest.Config{Host: hs.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// Indexes are added before the cache starts (the manager's way) and see pods.
			if err := c.IndexField(ctx, &corev1.Pod{}, "status.startTime", func(o client.Object) []string {
				return []string{o.(*corev1.Pod).Status.StartTime.UTC().Format(time.RFC3339)}
			}); err != nil {
				t.Fatal(err)
			}
			inf, err := c.GetInformer(ctx, &corev1.Pod{})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string]string{} // namespace/name → resource version, from the events
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc: func(obj any) {
					p, ok := obj.(*podwatch.Pod)
					if !ok {
						t.Errorf("informer event with %T, want *podwatch.Pod", obj)
						return
					}
					mu.Lock()
					seen[p.GetNamespace()+"/"+p.GetName()] = p.GetResourceVersion()
					mu.Unlock()
				},
				UpdateFunc: func(_, obj any) {
					p := obj.(*podwatch.Pod)
					mu.Lock()
					seen[p.GetNamespace()+"/"+p.GetName()] = p.GetResourceVersion()
					mu.Unlock()
				},
			}); err != nil {
				t.Fatal(err)
			}
			go func() {
				if err := c.Start(ctx); err != nil {
					t.Errorf("cache: %v", err)
				}
			}()
			if !c.WaitForCacheSync(ctx) {
				t.Fatal("the cache did not sync")
			}

			var want []corev1.Pod // what the cache holds, as the pods read from it
			for _, p := range srv.pods {
				if len(tc.namespaces) == 0 || p.Namespace == tc.namespaces[0] || (len(tc.namespaces) > 1 && p.Namespace == tc.namespaces[1]) {
					s, _ := podwatch.StripPod(&p)
					w := compactPod(s.(*corev1.Pod))
					w.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"} // the cache sets it
					want = append(want, *w)
				}
			}
			first := want[0]
			var got corev1.Pod
			if err := c.Get(ctx, client.ObjectKeyFromObject(&first), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(first, got); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "absent"}, &got); !apierrors.IsNotFound(err) {
				t.Errorf("Get of an absent pod: %v, want not found", err)
			}

			list := func(opts ...client.ListOption) []corev1.Pod {
				t.Helper()
				var pods corev1.PodList
				if err := c.List(ctx, &pods, opts...); err != nil {
					t.Fatal(err)
				}
				return pods.Items
			}
			byName := func(pods []corev1.Pod) map[string]corev1.Pod {
				out := map[string]corev1.Pod{}
				for _, p := range pods {
					out[p.Namespace+"/"+p.Name] = p
				}
				return out
			}
			if diff := cmp.Diff(byName(want), byName(list())); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			if got := list(client.InNamespace("shop")); len(got) != 20 {
				t.Errorf("List in shop: %d pods, want 20", len(got))
			}
			hash := first.Labels[podwatch.LabelPodTemplateHash]
			inReplicaSet := 0
			for _, p := range want {
				if p.Labels[podwatch.LabelPodTemplateHash] == hash {
					inReplicaSet++
				}
			}
			if got := list(client.MatchingLabels{podwatch.LabelPodTemplateHash: hash}); len(got) != inReplicaSet {
				t.Errorf("List by pod-template-hash: %d pods, want %d", len(got), inReplicaSet)
			}
			if got := list(client.MatchingFields{"status.startTime": "2025-06-01T11:58:03Z"}); len(got) != len(want) {
				t.Errorf("List by an index: %d pods, want %d", len(got), len(want))
			}

			// An update reaches the handlers as a compact Pod, and the readers as the pod.
			changed := srv.pods[0].DeepCopy()
			changed.ResourceVersion = "101"
			changed.Spec.Containers[0].Image = "ghcr.io/octo-org/web:2.0.0"
			srv.send("MODIFIED", changed)
			key := client.ObjectKeyFromObject(changed)
			for {
				if err := c.Get(ctx, key, &got); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				rv := seen[key.String()]
				mu.Unlock()
				if got.ResourceVersion == "101" && rv == "101" {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the update was not seen: pod at %s, handler at %s", got.ResourceVersion, rv)
				case <-time.After(10 * time.Millisecond):
				}
			}
			if img := got.Spec.Containers[0].Image; img != "ghcr.io/octo-org/web:2.0.0" {
				t.Errorf("image after the update = %q", img)
			}
			mu.Lock()
			if len(seen) != len(want) {
				t.Errorf("the handler saw %d pods, want %d", len(seen), len(want))
			}
			mu.Unlock()
		})
	}
}
