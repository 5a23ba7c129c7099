package e2e

// Benchmarks against the control plane and the tracker of TestMain. Run them with
//
//	go test -run '^$' -bench . -benchtime=1x ./internal/e2e/
//
// (make bench runs them and writes docs/benchmarks.md). They report what they measure with b.ReportMetric and
// a summary with b.Logf; they never fail on timing. BENCH_PODS, BENCH_MEMORY_PODS and BENCH_RECORD_PODS
// shorten a run.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// BenchmarkAdmission creates BENCH_PODS (default 2000) pods through the API server from benchWorkers
// concurrent clients with the tracker's webhook registered, and as many without it, and reports the
// client-side latency of each create: on-p50-ms, on-p99-ms, off-p50-ms, off-p99-ms, the overhead ratios
// p50-ratio and p99-ratio (on ÷ off), the create rates, and the CPU time each process of the machine used per
// pod created (on-cpu-kube-apiserver-ms/pod, …, on-cpu-total-ms/pod; benchCPU): on 2 shared cores the
// clients keep the control plane busy, so the latency ratio follows the ratio of CPU spent per create, and
// these tell whose CPU the webhook costs (the API server's call, or the webhook's own serving). The two configurations alternate in rounds
// (on, off, off, on, …), so that drifts of the control plane do not favour one of them. The pods are
// realistic and parked on a node nothing runs, so that neither the scheduler nor kwok adds load; they are
// deleted at the end only.
func BenchmarkAdmission(b *testing.B) {
	n := benchEnvInt(b, "BENCH_PODS", 2000)
	rounds := max(1, min(8, n/100))
	c := benchClient(b)
	node := benchParkNode(b)
	sw := newBenchWebhookSwitch(b, c, benchNamespace(b, "admission-probe"), node)
	ns := benchNamespace(b, "admission")
	park := benchParking{c: c, ns: ns, node: node, owner: benchOwner(b, c, ns), workers: benchWorkers}
	ctx := benchCtx(b)
	sw.set(b, true)
	if _, err := park.create(ctx, "warmup", 0, min(100, n)); err != nil {
		b.Fatal(err)
	}
	lat := map[bool][]time.Duration{}
	var roundRatios []float64 // p50 on ÷ p50 off of each round
	elapsed := map[bool]time.Duration{}
	reviews := map[bool]float64{}
	cpu := map[bool]map[string]time.Duration{true: {}, false: {}}
	for i := range b.N {
		for r := range rounds {
			order := []bool{true, false}
			if r%2 == 1 {
				order = []bool{false, true}
			}
			roundLat := map[bool][]time.Duration{}
			for _, on := range order {
				b.StopTimer()
				sw.set(b, on)
				b.StartTimer()
				from, to := r*n/rounds, (r+1)*n/rounds
				before, cpu0, start := benchReviews("CREATE"), benchCPU(), time.Now()
				l, err := park.create(ctx, fmt.Sprintf("%s%d", benchOnOff(on), i), from, to)
				if err != nil {
					b.Fatal(err)
				}
				elapsed[on] += time.Since(start)
				benchCPUDelta(cpu[on], cpu0, benchCPU())
				reviews[on] += benchReviews("CREATE") - before
				lat[on] = append(lat[on], l...)
				roundLat[on] = l
			}
			slices.Sort(roundLat[true])
			slices.Sort(roundLat[false])
			if off := benchPercentile(roundLat[false], 0.5); off > 0 {
				roundRatios = append(roundRatios, float64(benchPercentile(roundLat[true], 0.5))/float64(off))
			}
		}
	}
	p50, p99 := map[bool]time.Duration{}, map[bool]time.Duration{}
	for _, on := range []bool{true, false} {
		slices.Sort(lat[on])
		p50[on], p99[on] = benchPercentile(lat[on], 0.5), benchPercentile(lat[on], 0.99)
		b.ReportMetric(benchMS(p50[on]), benchOnOff(on)+"-p50-ms")
		b.ReportMetric(benchMS(p99[on]), benchOnOff(on)+"-p99-ms")
		b.ReportMetric(benchMS(benchPercentile(lat[on], 1)), benchOnOff(on)+"-max-ms")
		b.ReportMetric(float64(len(lat[on]))/elapsed[on].Seconds(), benchOnOff(on)+"-pods/s")
		b.Logf("admission webhook=%s pods=%d p50=%s p99=%s max=%s reviews=%.0f", benchOnOff(on), len(lat[on]),
			p50[on], p99[on], benchPercentile(lat[on], 1), reviews[on])
		perPod := benchCPUPerPod(cpu[on], len(lat[on]))
		for name, ms := range perPod {
			b.ReportMetric(ms, benchOnOff(on)+"-cpu-"+name+"-ms/pod")
		}
		b.Logf("admission webhook=%s CPU ms per pod: %s", benchOnOff(on), benchCPUSummary(perPod))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(p50[true])/float64(p50[false]), "p50-ratio")
	b.ReportMetric(float64(p99[true])/float64(p99[false]), "p99-ratio")
	lo50, hi50 := benchRatioCI(lat[true], lat[false], 0.5)
	lo99, hi99 := benchRatioCI(lat[true], lat[false], 0.99)
	b.ReportMetric(lo50, "p50-ratio-ci-lo")
	b.ReportMetric(hi50, "p50-ratio-ci-hi")
	b.ReportMetric(lo99, "p99-ratio-ci-lo")
	b.ReportMetric(hi99, "p99-ratio-ci-hi")
	if len(roundRatios) > 0 {
		b.ReportMetric(slices.Min(roundRatios), "round-p50-ratio-min")
		b.ReportMetric(slices.Max(roundRatios), "round-p50-ratio-max")
	}
	b.Logf("admission overhead of the webhook (on ÷ off): p50 ×%.2f (95%% CI ×%.2f–×%.2f), p99 ×%.2f (95%% CI ×%.2f–×%.2f); per-round p50 ratios %.2f",
		float64(p50[true])/float64(p50[false]), lo50, hi50, float64(p99[true])/float64(p99[false]), lo99, hi99, roundRatios)
}

// benchRatioCI is a 95 % bootstrap confidence interval of the ratio of the q-quantiles of on and off: both
// samples are resampled with replacement 1000 times (a fixed seed, so that a run is reproducible).
func benchRatioCI(on, off []time.Duration, q float64) (lo, hi float64) {
	if len(on) == 0 || len(off) == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	resample := func(xs []time.Duration) time.Duration {
		s := make([]time.Duration, len(xs))
		for i := range s {
			s[i] = xs[rng.IntN(len(xs))]
		}
		slices.Sort(s)
		return benchPercentile(s, q)
	}
	ratios := make([]float64, 1000)
	for i := range ratios {
		if d := resample(off); d > 0 {
			ratios[i] = float64(resample(on)) / float64(d)
		}
	}
	slices.Sort(ratios)
	return ratios[25], ratios[974]
}

func benchOnOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// BenchmarkCallsPerRollout deploys a Deployment with 1, 10 and 50 replicas, rolls it out to a new image and
// deletes it, and reports the records gh accepted for it (records/op) and the calls its record endpoint
// received meanwhile (calls/op, failed ones included). Both should not depend on the replicas: deployed,
// deployed, decommissioned.
func BenchmarkCallsPerRollout(b *testing.B) {
	for _, replicas := range []int32{1, 10, 50} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			var records, calls int
			var took time.Duration
			for range b.N {
				r, n, d := benchRollout(b, replicas)
				records, calls, took = records+r, calls+n, took+d
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(took.Seconds()/float64(b.N), "s/op")
			b.Logf("rollout replicas=%d records=%d calls=%d", replicas, records/b.N, calls/b.N)
		})
	}
}

// benchRollout runs one Deployment from creation through a rollout to deletion and returns the records gh
// accepted for it, the calls of its record endpoint and how long it took until the last record.
func benchRollout(b *testing.B, replicas int32) (records, calls int, took time.Duration) {
	ns := benchNamespace(b, "rollout")
	ctx := benchCtx(b)
	c := benchClient(b)
	before, start := gh.Calls(), time.Now()
	sel := map[string]string{"app": "api"}
	d := deployment(ns, "api", replicas, container("api", "ghcr.io/octo-org/api:1"))
	steps := []struct {
		what   string
		act    func() error
		image  string
		record int
	}{
		{"create", func() error { return c.Create(ctx, d) }, "ghcr.io/octo-org/api:1", 1},
		{"roll out", func() error {
			return retry.RetryOnConflict(retry.DefaultRetry, func() error {
				if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
					return err
				}
				d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/api:2"
				return c.Update(ctx, d)
			})
		}, "ghcr.io/octo-org/api:2", 2},
		{"delete", func() error {
			return c.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground))
		}, "", 3},
	}
	for _, s := range steps {
		if err := s.act(); err != nil {
			b.Fatalf("%s: %v", s.what, err)
		}
		want := int(replicas)
		if s.image == "" {
			want = 0
		}
		if err := benchWaitPods(ctx, c, ns, sel, want, s.image); err != nil {
			b.Fatalf("%s: %v", s.what, err)
		}
		if err := gh.WaitFor(ctx, func([]record.Record) bool { return len(recordsIn(ns)) >= s.record }); err != nil {
			b.Fatalf("%s: waiting for %d records: %v; records: %+v", s.what, s.record, err, recordsIn(ns))
		}
	}
	took = time.Since(start)
	time.Sleep(quiet) // a record too many would arrive now
	return len(recordsIn(ns)), gh.Calls() - before, took
}

// benchWaitPods waits until ns holds exactly n pods matching sel, all running image and none terminating.
func benchWaitPods(ctx context.Context, c client.Client, ns string, sel map[string]string, n int, image string) error {
	var pods corev1.PodList
	running := 0
	err := benchPoll(ctx, func() (bool, error) {
		if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(sel)); err != nil {
			return false, err
		}
		running = 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
				running++
			}
		}
		return running == n && len(pods.Items) == n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d pods running %s: %d of %d: %w", n, image, running, len(pods.Items), err)
	}
	return nil
}

// BenchmarkTimeToRecord creates BENCH_RECORD_PODS (default 500) bare pods at once, which the scheduler places
// on kwok's nodes, and reports the time from each pod being seen Running by an informer of the benchmark to
// its deployed record being accepted by gh (p50-ms, p99-ms, max-ms); then it deletes them and reports the time
// from each deletion being seen to the decommissioned record being accepted (gone-p50-ms, gone-p99-ms).
// Records are timestamped as gh accepts them, in a githubtest WaitFor condition.
func BenchmarkTimeToRecord(b *testing.B) {
	n := benchEnvInt(b, "BENCH_RECORD_PODS", 500)
	var up, gone []time.Duration
	reconcileSum, reconciles := benchHistogram(b, "deptracker_events_processed_timer")
	writeSum, writes := benchHistogram(b, "deptracker_ledger_write_seconds")
	for range b.N {
		u, g := benchTimeToRecord(b, n)
		up, gone = append(up, u...), append(gone, g...)
	}
	sum, count := benchHistogram(b, "deptracker_events_processed_timer")
	reconcileSum, reconciles = sum-reconcileSum, count-reconciles
	sum, count = benchHistogram(b, "deptracker_ledger_write_seconds")
	writeSum, writes = sum-writeSum, count-writes
	slices.Sort(up)
	slices.Sort(gone)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMS(benchPercentile(up, 0.5)), "p50-ms")
	b.ReportMetric(benchMS(benchPercentile(up, 0.99)), "p99-ms")
	b.ReportMetric(benchMS(benchPercentile(up, 1)), "max-ms")
	b.ReportMetric(benchMS(benchPercentile(gone, 0.5)), "gone-p50-ms")
	b.ReportMetric(benchMS(benchPercentile(gone, 0.99)), "gone-p99-ms")
	if reconciles > 0 {
		// The tracker reconciles one request at a time: its mean time bounds how fast a burst drains.
		b.ReportMetric(reconcileSum/float64(reconciles)*1000, "reconcile-ms")
	}
	if writes > 0 {
		// From a decision to its ledger write (retries included): the records are handed on after it.
		b.ReportMetric(writeSum/float64(writes)*1000, "ledger-write-ms")
	}
	b.Logf("time to record pods=%d running→deployed p50=%s p99=%s max=%s; deleted→decommissioned p50=%s p99=%s; "+
		"tracker reconciles=%d mean=%s", len(up), benchPercentile(up, 0.5), benchPercentile(up, 0.99),
		benchPercentile(up, 1), benchPercentile(gone, 0.5), benchPercentile(gone, 0.99), reconciles,
		time.Duration(reconcileSum/float64(max(reconciles, 1))*float64(time.Second)))
}

// benchTimes holds, per pod name, when something happened to it.
type benchTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (t *benchTimes) mark(name string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.at[name]; !ok {
		t.at[name] = now
	}
}

func (t *benchTimes) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}

// since returns, for every pod of from, the time from its event in from to its event in t, sorted.
func (t *benchTimes) since(tb testing.TB, from *benchTimes) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	from.mu.Lock()
	defer from.mu.Unlock()
	out := make([]time.Duration, 0, len(t.at))
	for name, end := range t.at {
		start, ok := from.at[name]
		if !ok {
			tb.Fatalf("pod %s: record accepted, but the pod was never seen", name)
		}
		out = append(out, end.Sub(start))
	}
	slices.Sort(out)
	return out
}

func newBenchTimes() *benchTimes { return &benchTimes{at: map[string]time.Time{}} }

func benchTimeToRecord(b *testing.B, n int) (up, gone []time.Duration) {
	ns := benchNamespace(b, "record")
	ctx := benchCtx(b)
	c := benchClient(b)
	const image = "ghcr.io/octo-org/record-latency:1"
	running, deleted := newBenchTimes(), newBenchTimes()
	deployed, decommissioned := newBenchTimes(), newBenchTimes()

	// The benchmark's own view of the pods: an informer, as the tracker's.
	watch, err := cache.New(env.Config, cache.Options{
		Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}},
	})
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
		if p, ok := obj.(*corev1.Pod); ok && p.Status.Phase == corev1.PodRunning {
			running.mark(p.Name, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, obj any) { seen(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				deleted.mark(p.Name, time.Now())
			}
		},
	}); err != nil {
		b.Fatal(err)
	}
	if !watch.WaitForCacheSync(ctx) {
		b.Fatal("the benchmark's informer did not sync")
	}

	// Accepted records, timestamped as gh accepts them: the condition runs after every answer.
	seenRecords := 0
	accepted := make(chan error, 1)
	go func() {
		accepted <- gh.WaitFor(ctx, func(rs []record.Record) bool {
			now := time.Now()
			if seenRecords > len(rs) {
				seenRecords = 0
			}
			for _, r := range rs[seenRecords:] {
				pod, ok := strings.CutPrefix(r.DeploymentName, ns+"/")
				if !ok {
					continue
				}
				pod, _, _ = strings.Cut(pod, "/")
				if r.Status == record.StatusDecommissioned {
					decommissioned.mark(pod, now)
				} else {
					deployed.mark(pod, now)
				}
			}
			seenRecords = len(rs)
			return decommissioned.len() == n
		})
	}()

	spec := podTemplate(nil, container("main", image)).Spec
	err = benchForEach(ctx, n, benchWorkers, func(ctx context.Context, i int) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%05d", i)}}
		pod.Spec = *spec.DeepCopy()
		return c.Create(ctx, pod)
	})
	if err != nil {
		b.Fatalf("creating pods: %v", err)
	}
	if err := benchPoll(ctx, func() (bool, error) { return deployed.len() == n, nil }); err != nil {
		b.Fatalf("waiting for %d deployed records: %d of them, %d pods seen running: %v",
			n, deployed.len(), running.len(), err)
	}
	if err := benchDeletePods(ctx, c, ns, nil); err != nil {
		b.Fatal(err)
	}
	if err := <-accepted; err != nil {
		b.Fatalf("waiting for %d decommissioned records: %d of them, %d pods seen deleted: %v",
			n, decommissioned.len(), deleted.len(), err)
	}
	return deployed.since(b, running), decommissioned.since(b, deleted)
}

// BenchmarkInformerMemory measures the heap a pod informer holds after its initial sync, per pod, with the
// tracker's cache transform (podwatch.Strip, which keeps pods compact, with podwatch.NewInformer) and without
// one, at BENCH_MEMORY_PODS pods (default 1000 and 10000; 50000 for a large cluster). The pods are realistic,
// parked, with the status a kubelet reports, in the tracker's own namespace: neither the tracker's cache nor
// its webhook looks there, so the tracker stays idle while the heap is measured. Reported: live-B/pod (HeapAlloc after GC) and inuse-B/pod (HeapInuse), differences from before
// the informer started; they include the informer's fixed cost, which the larger size amortizes.
func BenchmarkInformerMemory(b *testing.B) {
	sizes := benchEnvInts(b, "BENCH_MEMORY_PODS", []int{1000, 10000})
	c := benchClient(b)
	node := benchParkNode(b)
	ns := trackerNamespace
	sel := map[string]string{"deployment-tracker.dev/bench": "memory-" + benchSuffix()}
	park := benchParking{
		c: c, ns: ns, node: node, owner: benchOwner(b, c, ns), labels: sel, workers: bulkWorkers, running: true,
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), benchWait)
		defer cancel()
		if err := benchDeletePods(ctx, c, ns, sel); err != nil {
			b.Errorf("deleting the pods of the memory benchmark: %v", err)
		}
	})
	// The cache's HTTP client and REST mapper are made and warmed up once, outside the measurements.
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(env.Config, hc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := mapper.RESTMapping(corev1.SchemeGroupVersion.WithKind("Pod").GroupKind(), "v1"); err != nil {
		b.Fatal(err)
	}
	transforms := []struct {
		name string
		fn   toolscache.TransformFunc
	}{{"strip", podwatch.Strip}, {"none", nil}}
	created := 0
	for _, size := range sizes {
		ctx := benchCtx(b)
		start := time.Now()
		if _, err := park.create(ctx, "mem", created, size); err != nil {
			b.Fatal(err)
		}
		b.Logf("created %d running pods in %s", size-created, time.Since(start).Round(time.Millisecond))
		created = size
		for _, tr := range transforms {
			b.Run(fmt.Sprintf("pods=%d/transform=%s", size, tr.name), func(b *testing.B) {
				var live, inuse float64
				for range b.N {
					opts := cache.Options{
						HTTPClient:           hc,
						Mapper:               mapper,
						Scheme:               env.Scheme,
						DefaultNamespaces:    map[string]cache.Config{ns: {}},
						DefaultLabelSelector: labels.SelectorFromSet(sel),
						DefaultTransform:     tr.fn,
					}
					if tr.fn != nil {
						opts.NewInformer = podwatch.NewInformer // as the tracker's cache: compact pods read as pods
					}
					l, u, err := benchInformerHeap(benchCtx(b), opts, size)
					if err != nil {
						b.Fatal(err)
					}
					live, inuse = live+l, inuse+u
				}
				perPod := func(v float64) float64 { return v / float64(b.N) / float64(size) }
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(perPod(live), "live-B/pod")
				b.ReportMetric(perPod(inuse), "inuse-B/pod")
				b.Logf("informer pods=%d transform=%s live=%.0f B/pod inuse=%.0f B/pod",
					size, tr.name, perPod(live), perPod(inuse))
			})
		}
	}
}

// benchInformerHeap starts a cache with opts, waits for its pod informer to sync with want pods and returns
// the growth of the live heap and of the heap in use.
func benchInformerHeap(ctx context.Context, opts cache.Options, want int) (live, inuse float64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	alloc0, inuse0 := benchHeap()
	c, err := cache.New(env.Config, opts)
	if err != nil {
		return 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if _, err := c.GetInformer(ctx, &corev1.Pod{}); err != nil {
		return 0, 0, fmt.Errorf("starting the pod informer: %w", err)
	}
	if !c.WaitForCacheSync(ctx) {
		return 0, 0, fmt.Errorf("the pod informer did not sync")
	}
	alloc1, inuse1 := benchHeap()
	var pods corev1.PodList // after the measurement: List copies every pod
	if err := c.List(ctx, &pods); err != nil {
		return 0, 0, err
	}
	if len(pods.Items) != want {
		return 0, 0, fmt.Errorf("the informer holds %d pods, want %d", len(pods.Items), want)
	}
	stripped := opts.DefaultTransform != nil
	if p := pods.Items[0]; (p.Spec.Volumes == nil) != stripped || len(p.Status.ContainerStatuses) != 3 {
		return 0, 0, fmt.Errorf("pod %s: volumes %d, container statuses %d: transform applied %t, want %t",
			p.Name, len(p.Spec.Volumes), len(p.Status.ContainerStatuses), p.Spec.Volumes == nil, stripped)
	}
	return float64(alloc1) - float64(alloc0), float64(inuse1) - float64(inuse0), nil
}
