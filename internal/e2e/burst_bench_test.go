package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// BenchmarkBurstDeployments creates BENCH_BURST_DEPLOYMENTS (default 20) Deployments of BENCH_BURST_REPLICAS
// (default 50) replicas at once, 1,000 pods, and reports how fast the burst is decided: per Deployment, from
// the benchmark's informer seeing its first pod Running to gh accepting its deployed record (p50-ms, max-ms),
// and from the last pod of the burst running to the last record accepted (tail-ms; 0 when every record was
// accepted before the last pod ran). Goal: every record within 5 s.
func BenchmarkBurstDeployments(b *testing.B) {
	n := benchEnvInt(b, "BENCH_BURST_DEPLOYMENTS", 20)
	replicas := benchEnvInt(b, "BENCH_BURST_REPLICAS", 50)
	var per []time.Duration
	var tail time.Duration
	for range b.N {
		p, t := benchBurst(b, n, int32(replicas))
		per, tail = append(per, p...), max(tail, t)
	}
	slices.Sort(per)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n*replicas), "pods")
	b.ReportMetric(benchMS(benchPercentile(per, 0.5)), "p50-ms")
	b.ReportMetric(benchMS(benchPercentile(per, 1)), "max-ms")
	b.ReportMetric(benchMS(tail), "tail-ms")
	b.Logf("burst deployments=%d replicas=%d first running→record p50=%s max=%s; last pod running→last record %s",
		n, replicas, benchPercentile(per, 0.5), benchPercentile(per, 1), tail)
}

func benchBurst(b *testing.B, n int, replicas int32) (per []time.Duration, tail time.Duration) {
	ns := benchNamespace(b, "burst")
	ctx := benchCtx(b)
	c := benchClient(b)
	b.Cleanup(func() {
		// Before the namespace's pods are removed: their ReplicaSets would make them again.
		for _, obj := range []client.Object{&appsv1.Deployment{}, &appsv1.ReplicaSet{}} {
			if err := c.DeleteAllOf(context.Background(), obj, client.InNamespace(ns)); err != nil {
				b.Errorf("deleting the %T objects of %s: %v", obj, ns, err)
			}
		}
	})
	firstRunning, deployed := newBenchTimes(), newBenchTimes()
	var lastRunning time.Time
	running := map[string]bool{}

	watch, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = watch.Start(wctx) }()
	inf, err := watch.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		b.Fatal(err)
	}
	seen := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return
		}
		now := time.Now()
		firstRunning.mark(p.Labels["app"], now)
		firstRunning.mu.Lock() // also guards running and lastRunning
		if !running[p.Name] {
			running[p.Name] = true
			lastRunning = now
		}
		firstRunning.mu.Unlock()
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, obj any) { seen(obj) }}); err != nil {
		b.Fatal(err)
	}
	if !watch.WaitForCacheSync(ctx) {
		b.Fatal("the benchmark's informer did not sync")
	}
	accepted := make(chan error, 1)
	seenRecords := 0
	go func() {
		accepted <- gh.WaitFor(ctx, func(rs []record.Record) bool {
			now := time.Now()
			if seenRecords > len(rs) {
				seenRecords = 0
			}
			for _, r := range rs[seenRecords:] {
				if name, ok := strings.CutPrefix(r.DeploymentName, ns+"/"); ok && r.Status == record.StatusDeployed {
					name, _, _ = strings.Cut(name, "/")
					deployed.mark(name, now)
				}
			}
			seenRecords = len(rs)
			return deployed.len() == n
		})
	}()
	err = benchForEach(ctx, n, benchWorkers, func(ctx context.Context, i int) error {
		return c.Create(ctx, deployment(ns, fmt.Sprintf("d%02d", i), replicas, container("app", fmt.Sprintf("ghcr.io/octo-org/burst-%02d:1", i))))
	})
	if err != nil {
		b.Fatalf("creating Deployments: %v", err)
	}
	if err := <-accepted; err != nil {
		b.Fatalf("waiting for %d deployed records: %d of them: %v", n, deployed.len(), err)
	}
	if err := benchPoll(ctx, func() (bool, error) {
		firstRunning.mu.Lock()
		defer firstRunning.mu.Unlock()
		return len(running) == n*int(replicas), nil
	}); err != nil {
		b.Fatalf("waiting for %d pods running: %v", n*int(replicas), err)
	}
	per = deployed.since(b, firstRunning)
	last := time.Time{}
	deployed.mu.Lock()
	for _, at := range deployed.at {
		if at.After(last) {
			last = at
		}
	}
	deployed.mu.Unlock()
	firstRunning.mu.Lock()
	tail = max(last.Sub(lastRunning), 0)
	firstRunning.mu.Unlock()
	return per, tail
}
