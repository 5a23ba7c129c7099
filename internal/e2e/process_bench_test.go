package e2e

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

// processVariant is a build of the tracker and its environment: the shipped build (compact pods, filled from
// client-go's streaming initial list, which the binary turns on: app.StreamInitialLists), the same with the
// initial list of whole pods (compact-list: KUBE_FEATURE_WatchListClient=false, compacted after the list is
// decoded whole), or the wholepods build, whose cache keeps pods whole as controller-runtime's default cache
// does (internal/app/podcache_wholepods.go), with everything else the same (owner metadata stripped,
// workloads trimmed, streamed initial lists).
type processVariant struct {
	name, tags string
	env        []string
}

var processVariants = []processVariant{
	{name: "compact"},
	{name: "compact-list", env: []string{"KUBE_FEATURE_WatchListClient=false"}},
	{name: "whole", tags: "wholepods"},
}

// Layout of the pods of BenchmarkProcessMemory: Deployments of processReplicas pods (BenchmarkRetained's
// ReplicaSets of 10), at most processPodsPerNamespace pods in a namespace.
const (
	processReplicas         = 10
	processPodsPerNamespace = 5000
)

// processFigures is what one run of the tracker's binary used, in bytes: VmRSS and VmHWM (/proc/PID/status)
// once it had decided every pod, and the Go heap it reported on /metrics then.
type processFigures struct {
	rss, hwm, heapAlloc, heapInuse float64
	heapTop                        string // where the live heap is, benchHeapProfile
}

const mib = 1 << 20

// BenchmarkProcessMemory runs the tracker's binary, built as make build builds it, against the control plane
// with BENCH_PROCESS_PODS (default 10000; 50000 for a large cluster) running pods, and reports its resident
// memory beside that of the wholepods build, whose cache keeps pods whole (the plain controller-runtime
// cache), and of the shipped build with an initial list instead of a stream (processVariants): the ratios are
// measured in one run. The pods are realistic (benchParkedPod), in Deployments
// of 10 replicas (the ReplicaSet controller creates them; the Deployments are in the tracker's rollouts cache
// too), bound to a parked node and given a running pod's status by the benchmark. Each build runs once before the
// pods exist (pods=0: the fixed cost) and once with them, cluster-wide as the shipped Deployment (excluding its
// own namespace and kube-system), with -dry-run (no ledger, records on stdout), until it has seen every pod
// and its queues are empty. Reported per run: rss-MiB, hwm-MiB (the peak, what a memory limit must allow),
// heap-MiB and heap-inuse-MiB (go_memstats_heap_alloc_bytes and go_memstats_heap_inuse_bytes, not collected
// first), and with the pods hwm-MiB/10k-pods, the growth of the peak over the pods=0 run per 10,000 pods. The
// suite's tracker is stopped meanwhile: it would decide the pods too.
func BenchmarkProcessMemory(b *testing.B) {
	n := benchEnvInt(b, "BENCH_PROCESS_PODS", 10000)
	bins := benchBuildTrackers(b) // by tags
	kubeconfig := benchTrackerKubeconfig(b)
	benchPauseTracker(b)
	base := map[string]processFigures{}
	run := func(pods int, v processVariant) {
		b.Run(fmt.Sprintf("pods=%d/cache=%s", pods, v.name), func(b *testing.B) {
			var f processFigures
			for range b.N {
				var err error
				if f, err = benchRunTracker(b, bins[v.tags], kubeconfig, v.env, pods); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(f.rss/mib, "rss-MiB")
			b.ReportMetric(f.hwm/mib, "hwm-MiB")
			b.ReportMetric(f.heapAlloc/mib, "heap-MiB")
			b.ReportMetric(f.heapInuse/mib, "heap-inuse-MiB")
			if pods == 0 {
				base[v.name] = f
			} else if f0, ok := base[v.name]; ok {
				b.ReportMetric((f.hwm-f0.hwm)/mib/float64(pods)*10000, "hwm-MiB/10k-pods")
			}
			b.Logf("process cache=%s pods=%d rss=%.1f MiB hwm=%.1f MiB heap=%.1f MiB heap-inuse=%.1f MiB; live heap by allocating function: %s",
				v.name, pods, f.rss/mib, f.hwm/mib, f.heapAlloc/mib, f.heapInuse/mib, f.heapTop)
		})
	}
	for _, v := range processVariants {
		run(0, v)
	}
	c := benchClient(b)
	node := benchParkNode(b)
	start := time.Now()
	benchRunningDeployments(b, c, node, n)
	b.Logf("%d running pods in %d Deployments in %s", n, (n+processReplicas-1)/processReplicas,
		time.Since(start).Round(time.Second))
	for _, v := range processVariants {
		run(n, v)
	}
}

// benchBuildTrackers builds the binary with the tags of every processVariant, as make build does, and returns
// the paths by tags.
func benchBuildTrackers(tb testing.TB) map[string]string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	out := map[string]string{}
	for _, v := range processVariants {
		if _, ok := out[v.tags]; ok {
			continue
		}
		bin := filepath.Join(dir, "deployment-tracker-"+v.name)
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
		if v.tags != "" {
			args = append(args, "-tags", v.tags)
		}
		cmd := exec.Command("go", append(args, "./cmd/deployment-tracker")...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("building the %s tracker: %v\n%s", v.name, err, b)
		}
		out[v.tags] = bin
	}
	return out
}

// benchTrackerKubeconfig writes a kubeconfig for the control plane that acts as the shipped ServiceAccount
// (env.ServiceAccountConfig's impersonation), so that the binary runs with the shipped RBAC.
func benchTrackerKubeconfig(tb testing.TB) string {
	tb.Helper()
	kc, err := clientcmd.LoadFromFile(env.KubeconfigPath)
	if err != nil {
		tb.Fatalf("reading the control plane's kubeconfig: %v", err)
	}
	sa := env.ServiceAccountConfig(trackerNamespace, serviceAccount).Impersonate
	for _, u := range kc.AuthInfos {
		u.Impersonate, u.ImpersonateGroups = sa.UserName, sa.Groups
	}
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		tb.Fatalf("writing the tracker's kubeconfig: %v", err)
	}
	return path
}

// benchPauseTracker stops the suite's tracker and starts it again at cleanup.
func benchPauseTracker(tb testing.TB) {
	tb.Helper()
	if err := tracker.stop(); err != nil {
		tb.Fatalf("stopping the suite's tracker: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var err error
		if tracker, err = startTracker(ctx, trackerSettings{}); err != nil {
			tb.Fatalf("starting the suite's tracker again: %v", err)
		}
	})
}

// benchRunningDeployments creates Deployments of processReplicas parked pods, n pods in all, in namespaces of
// at most processPodsPerNamespace pods, and gives every pod the status of a running one as the ReplicaSet
// controller creates them. The Deployments, their ReplicaSets and pods, and the namespaces are removed at
// cleanup.
func benchRunningDeployments(tb testing.TB, c client.Client, node string, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait*time.Duration(max(1, n/5000)))
	defer cancel()
	sel := map[string]string{"deployment-tracker.dev/bench": "process-" + benchSuffix()}
	namespaces := make([]string, (n+processPodsPerNamespace-1)/processPodsPerNamespace)
	for i := range namespaces {
		namespaces[i] = benchNamespace(tb, "process")
		tb.Cleanup(func() { benchDeleteWorkloads(tb, namespaces[i]) }) // before the namespace's removal
	}
	deployments := (n + processReplicas - 1) / processReplicas
	err := benchForEach(ctx, deployments, bulkWorkers, func(ctx context.Context, i int) error {
		replicas := min(processReplicas, n-i*processReplicas)
		ns := namespaces[i*processReplicas/processPodsPerNamespace]
		return c.Create(ctx, benchParkedDeployment(ns, fmt.Sprintf("api-%05d", i), node, int32(replicas), sel))
	})
	if err != nil {
		tb.Fatalf("creating the Deployments: %v", err)
	}
	running := map[string]bool{}
	for len(running) < n {
		for _, ns := range namespaces {
			if err := benchRunPending(ctx, c, ns, sel, running); err != nil {
				tb.Fatalf("%d of %d pods running: %v", len(running), n, err)
			}
		}
		if len(running) < n {
			select {
			case <-ctx.Done():
				tb.Fatalf("%d of %d pods running: %v", len(running), n, ctx.Err())
			case <-time.After(time.Second):
			}
		}
	}
}

// benchParkedDeployment is a Deployment whose pods are benchParkedPod's, labelled sel besides.
func benchParkedDeployment(ns, name, node string, replicas int32, sel map[string]string) *appsv1.Deployment {
	pod := benchParkedPod(ns, name, node, metav1.OwnerReference{}, sel)
	delete(pod.Labels, "pod-template-hash") // the Deployment controller sets its own
	pod.Labels["app.kubernetes.io/instance"] = name
	match := map[string]string{"app.kubernetes.io/instance": name}
	for k, v := range sel {
		match[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: sel},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: match},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: pod.Labels, Annotations: pod.Annotations},
				Spec:       pod.Spec,
			},
		},
	}
}

// benchRunPending gives the pods of ns matching sel that are still pending the status of a running pod
// (benchSetRunning, as a merge patch of the status) and adds them to running.
func benchRunPending(ctx context.Context, c client.Client, ns string, sel map[string]string, running map[string]bool) error {
	opts := []client.ListOption{client.InNamespace(ns), client.MatchingLabels(sel),
		client.MatchingFields{"status.phase": string(corev1.PodPending)}, client.Limit(500)}
	for cont := ""; ; {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, append(opts, client.Continue(cont))...); err != nil {
			return fmt.Errorf("listing the pending pods of %s: %w", ns, err)
		}
		first := len(running)
		err := benchForEach(ctx, len(pods.Items), bulkWorkers, func(ctx context.Context, i int) error {
			pod := &pods.Items[i]
			orig := pod.DeepCopy()
			benchSetRunning(pod, first+i)
			if err := c.Status().Patch(ctx, pod, client.MergeFrom(orig)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("setting the status of pod %s: %w", pod.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			running[p.Namespace+"/"+p.Name] = true
		}
		if cont = pods.Continue; cont == "" {
			return nil
		}
	}
}

// benchDeleteWorkloads deletes the Deployments and ReplicaSets of ns and waits until the ReplicaSets are gone,
// so that none recreates the pods benchRemoveNamespace deletes.
func benchDeleteWorkloads(tb testing.TB, ns string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground)
	for _, obj := range []client.Object{&appsv1.Deployment{}, &appsv1.ReplicaSet{}} {
		if err := env.Client.DeleteAllOf(ctx, obj, client.InNamespace(ns), bg); err != nil {
			tb.Errorf("deleting the %T objects of %s: %v", obj, ns, err)
			return
		}
	}
	err := benchPoll(ctx, func() (bool, error) {
		var rs appsv1.ReplicaSetList
		err := env.Client.List(ctx, &rs, client.InNamespace(ns), client.Limit(1))
		return err == nil && len(rs.Items) == 0, err
	})
	if err != nil {
		tb.Errorf("the ReplicaSets of %s are not gone: %v", ns, err)
	}
}

// benchRunTracker runs the binary bin as the suite configures its tracker, cluster-wide and with -dry-run,
// until it is ready, has seen at least pods pods and its queues are empty, and returns what it used then. It
// stops the binary before returning, and kills it at cleanup should that fail.
func benchRunTracker(tb testing.TB, bin, kubeconfig string, extraEnv []string, pods int) (processFigures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), benchWait*time.Duration(max(1, pods/10000)))
	defer cancel()
	ports := make([]int, 4)
	for i := range ports {
		ports[i] = benchFreePort(tb)
	}
	webhookPort, metricsAddr, healthAddr := ports[0], "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	pprofAddr := "127.0.0.1:" + strconv.Itoa(ports[3])
	cmd := exec.Command(bin,
		"-webhook-host=127.0.0.1",
		"-webhook-port="+strconv.Itoa(webhookPort),
		"-cert-dir="+env.WebhookServerOptions().CertDir,
		"-exclude-namespaces="+trackerNamespace+",kube-system",
		"-metrics-bind-address="+metricsAddr,
		"-health-probe-bind-address="+healthAddr,
		"-pprof-bind-address="+pprofAddr,
		"-dry-run",
		// Unpaced, as the suite's tracker: the records of every pod are handed to the sink before measuring.
		"-github-requests-per-minute=0",
		"-github-requests-per-hour=0",
		"-shutdown-timeout=5s",
	)
	// Only what the tracker needs: nothing of the developer's environment (tokens, KUBECONFIG) leaks in.
	cmd.Env = []string{
		"KUBECONFIG=" + kubeconfig,
		"ORG=" + org,
		"CLUSTER=" + cluster,
		"LOGICAL_ENVIRONMENT=" + logicalEnvironment,
		"PHYSICAL_ENVIRONMENT=" + physicalEnvironment,
		"POD_NAMESPACE=" + trackerNamespace,
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	logPath := filepath.Join(tb.TempDir(), "tracker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return processFigures{}, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile // the records of -dry-run go to stdout: /dev/null
	cmd.SysProcAttr = testenv.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		return processFigures{}, fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	stop := func() error {
		if exited {
			return nil
		}
		exited = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return errors.New("the tracker did not stop within 30s of SIGTERM: killed")
		}
	}
	tb.Cleanup(func() { _ = stop() })
	fail := func(err error) (processFigures, error) {
		_ = stop()
		return processFigures{}, fmt.Errorf("%s: %w; its log:\n%s", filepath.Base(bin), err, benchTail(logPath, 30))
	}

	// Decided: ready (informers synced, webhook serving), every pod seen, the controllers' and the dispatcher's
	// queues empty, twice in a row a second apart.
	var seen, depth float64
	ready, settled := false, 0
	for settled < 2 {
		select {
		case err := <-done:
			exited = true
			return fail(fmt.Errorf("exited: %v", err))
		case <-ctx.Done():
			return fail(fmt.Errorf("not done: ready=%t, %.0f of %d pods seen, %.0f queued: %w",
				ready, seen, pods, depth, ctx.Err()))
		case <-time.After(time.Second):
		}
		ready = benchReadyz(ctx, "http://"+healthAddr+"/readyz")
		m, err := benchScrape(ctx, "http://"+metricsAddr+"/metrics")
		if err != nil || !ready {
			settled = 0
			continue
		}
		seen, depth = m["deptracker_pods_first_seen_total"], m["workqueue_depth"]+m["deptracker_queue_depth"]
		if seen >= float64(pods) && depth == 0 {
			settled++
		} else {
			settled = 0
		}
	}
	rss, hwm, err := benchProcStatus(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	m, err := benchScrape(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return fail(err)
	}
	f := processFigures{rss: rss, hwm: hwm, heapAlloc: m["go_memstats_heap_alloc_bytes"], heapInuse: m["go_memstats_heap_inuse_bytes"]}
	if f.heapTop, err = benchHeapProfile(ctx, "http://"+pprofAddr+"/debug/pprof/heap", filepath.Base(bin), pods); err != nil {
		return fail(err)
	}
	if err := stop(); err != nil {
		return processFigures{}, fmt.Errorf("%s: stopping: %w; its log:\n%s", filepath.Base(bin), err, benchTail(logPath, 30))
	}
	return f, nil
}

// benchHeapProfile reads the tracker's heap profile (-pprof-bind-address) and returns the functions that
// allocated most of the live heap (inuse_space, as go tool pprof -top -sample_index=inuse_space lists them).
// With BENCH_PROCESS_PROFILE set to a directory, the profile is written there as heap-NAME-PODS.pb.gz too (go
// tool pprof reads it with the binary the benchmark built, or without symbols' sources).
func benchHeapProfile(ctx context.Context, url, name string, pods int) (string, error) {
	body, err := benchGet(ctx, url)
	if err != nil {
		return "", err
	}
	if dir := os.Getenv("BENCH_PROCESS_PROFILE"); dir != "" {
		path := filepath.Join(dir, fmt.Sprintf("heap-%s-%d.pb.gz", name, pods))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return "", fmt.Errorf("writing the heap profile: %w", err)
		}
	}
	p, err := profile.Parse(strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("parsing the heap profile: %w", err)
	}
	idx := slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "inuse_space" })
	if idx < 0 {
		return "", errors.New("the heap profile has no inuse_space")
	}
	byFunc := map[string]int64{}
	var total int64
	for _, smp := range p.Sample {
		v := smp.Value[idx]
		total += v
		if len(smp.Location) > 0 && len(smp.Location[0].Line) > 0 && smp.Location[0].Line[0].Function != nil {
			byFunc[smp.Location[0].Line[0].Function.Name] += v
		}
	}
	funcs := slices.Collect(maps.Keys(byFunc))
	slices.SortFunc(funcs, func(a, b string) int { return cmp.Compare(byFunc[b], byFunc[a]) })
	parts := []string{fmt.Sprintf("total %.1f MiB", float64(total)/mib)}
	for _, f := range funcs[:min(6, len(funcs))] {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", f, float64(byFunc[f])/mib))
	}
	return strings.Join(parts, "; "), nil
}

// benchFreePort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func benchFreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// benchScrape reads the Prometheus text exposition at url and returns each metric's value, summed over its
// label values.
func benchScrape(ctx context.Context, url string) (map[string]float64, error) {
	body, err := benchGet(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name := line[:sp]
		if i := strings.IndexAny(name, "{ "); i >= 0 {
			name = name[:i]
		}
		out[name] += v
	}
	return out, sc.Err()
}

// benchReadyz reports whether url answers 200.
func benchReadyz(ctx context.Context, url string) bool {
	_, err := benchGet(ctx, url)
	return err == nil
}

func benchGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// benchProcStatus returns VmRSS and VmHWM of process pid in bytes (Linux's /proc/PID/status, in kB there).
func benchProcStatus(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading the tracker's memory figures: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s in /proc/%d/status: %w", key, pid, err)
		}
		if key == "VmRSS" {
			rss = kb * 1024
		} else {
			hwm = kb * 1024
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// benchTail returns the last n lines of the file at path.
func benchTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
