package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

// Helpers of the benchmarks in bench_test.go. Unlike the tests' helpers they take a testing.TB, bound every
// wait with benchWait and clean up after themselves, so that one benchmark leaves the control plane as it
// found it for the next.

// benchWait bounds each phase of a benchmark (creating pods, waiting for records, removing a namespace).
const benchWait = 5 * time.Minute

// benchWorkers is the number of concurrent clients whose requests are measured; bulkWorkers the number that
// prepare or clean up (on 2 cores the API server is busiest with about 8).
const (
	benchWorkers = 4
	bulkWorkers  = 8
)

// benchParkedTaint keeps the scheduler from placing pods on the parked node.
const benchParkedTaint = "deployment-tracker.dev/parked"

func benchCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	tb.Cleanup(cancel)
	return ctx
}

// benchEnvInt reads a positive integer from the environment variable name, def when unset.
func benchEnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// benchEnvInts reads a comma-separated list of positive integers, sorted ascending, def when unset.
func benchEnvInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want comma-separated positive integers", name, v)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// benchClient is an administrator client without client-side rate limiting, so that the latencies measured
// are the API server's (and its webhooks').
func benchClient(tb testing.TB) client.Client {
	tb.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1
	cfg.UserAgent = "deployment-tracker-bench"
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		tb.Fatalf("creating the benchmark client: %v", err)
	}
	return c
}

func benchSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// benchNamespace creates a namespace for one benchmark run and removes it, with its pods, at cleanup.
func benchNamespace(tb testing.TB, prefix string) string {
	tb.Helper()
	name := "bench-" + prefix + "-" + benchSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		tb.Fatalf("creating namespace %s: %v", name, err)
	}
	tb.Cleanup(func() { benchRemoveNamespace(tb, name) })
	return name
}

// benchRemoveNamespace deletes the pods of ns at once, then ns, and waits until ns is gone. Pods are deleted with a
// grace period of 0 first: parked pods have no kubelet to confirm a graceful deletion and would keep the
// namespace terminating until the pod garbage collector gives up on them.
func benchRemoveNamespace(tb testing.TB, ns string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	if err := benchDeletePods(ctx, env.Client, ns, nil); err != nil {
		tb.Errorf("deleting the pods of %s: %v", ns, err)
	}
	err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsNotFound(err) {
		tb.Errorf("deleting namespace %s: %v", ns, err)
		return
	}
	err = benchPoll(ctx, func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		tb.Errorf("namespace %s not gone: %v", ns, err)
	}
}

// benchPoll calls cond every 100 ms until it reports done, fails, or ctx ends.
func benchPoll(ctx context.Context, cond func() (bool, error)) error {
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// benchForEach calls fn for 0 ≤ i < n from workers goroutines and returns the first error.
func benchForEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// benchDeletePods deletes the pods of ns matching labels (all when nil) with a grace period of 0, bulkWorkers
// at a time, and waits until they are gone.
func benchDeletePods(ctx context.Context, c client.Client, ns string, labels map[string]string) error {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	err := benchForEach(ctx, len(list.Items), bulkWorkers, func(ctx context.Context, i int) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: list.Items[i].Name}}
		// A control plane on 2 cores busy with thousands of deletions may answer one with a timeout: the
		// deletion usually went through, and asking again is harmless.
		var err error
		for range 3 {
			err = client.IgnoreNotFound(c.Delete(ctx, pod, client.GracePeriodSeconds(0)))
			if !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
				return err
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting pods: %w", err)
	}
	return benchPoll(ctx, func() (bool, error) {
		err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(labels), client.Limit(1))
		return err == nil && len(list.Items) == 0, err
	})
}

// benchParkNode creates a node nothing runs and removes it at cleanup. Pods bound to it (spec.nodeName) stay
// as they are written: kwok manages only the nodes annotated for it, the scheduler does not touch bound pods
// and there is no kubelet. The node must exist: kube-controller-manager's pod garbage collector deletes pods
// bound to a missing node after a 40 s quarantine (they were gone within a minute when tried). Its taint keeps
// the scheduler from placing other pods on it; parked pods tolerate every taint, so that the taint eviction
// controller leaves them alone should the node lifecycle controller taint the node.
func benchParkNode(tb testing.TB) string {
	tb.Helper()
	name := "bench-parked-" + benchSuffix()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: benchParkedTaint, Effect: corev1.TaintEffectNoSchedule}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.Client.Create(ctx, node); err != nil {
		tb.Fatalf("creating the parked node: %v", err)
	}
	tb.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), node); client.IgnoreNotFound(err) != nil {
			tb.Errorf("deleting the parked node: %v", err)
		}
	})
	return name
}

// benchOwner creates a ConfigMap in ns for parked pods to name as their controller, so that they carry an
// owner reference as a ReplicaSet's pods do. An owner that does not exist would get them collected by the
// garbage collector, and a real ReplicaSet would adopt or release them.
func benchOwner(tb testing.TB, c client.Client, ns string) metav1.OwnerReference {
	tb.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-owner-" + benchSuffix()}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Create(ctx, cm); err != nil {
		tb.Fatalf("creating the owner ConfigMap: %v", err)
	}
	tb.Cleanup(func() {
		// Orphan: the pods are deleted with a grace period of 0 by their benchmark, not by the garbage collector.
		err := env.Client.Delete(context.Background(), cm, client.PropagationPolicy(metav1.DeletePropagationOrphan))
		if client.IgnoreNotFound(err) != nil {
			tb.Errorf("deleting the owner ConfigMap: %v", err)
		}
	})
	return metav1.OwnerReference{
		APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// Images of the parked pods: a tag, a digest, a registry with a port, Docker Hub.
const (
	benchMigrateImage = "registry.local:5000/octo-org/api-migrate:1.2.3"
	benchAPIImage     = "ghcr.io/octo-org/api:1.2.3"
	benchProxyImage   = "ghcr.io/octo-org/envoy@" + pinnedDigest
	benchShipperImage = "docker.io/fluent/fluent-bit:3.1.4"
)

// benchParkedPod is a realistic application pod as a ReplicaSet creates it and the API server stores it:
// labels and annotations, one init container and three containers with environment, ports, probes, resources
// and volume mounts, the service account token volume admission adds, bound to node and tolerating every
// taint.
func benchParkedPod(ns, name, node string, owner metav1.OwnerReference, labels map[string]string) *corev1.Pod {
	envVars := func(names ...string) []corev1.EnvVar {
		vars := make([]corev1.EnvVar, 0, len(names)+2)
		for _, n := range names {
			vars = append(vars, corev1.EnvVar{Name: n, Value: strings.ToLower(n) + "-value"})
		}
		return vars
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
		}
	}
	ctr := func(name, image string, port int32, vars []corev1.EnvVar) corev1.Container {
		return corev1.Container{
			Name: name, Image: image, Env: vars,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/" + name, ReadOnly: true},
				{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			},
			LivenessProbe:  probe("/healthz"),
			ReadinessProbe: probe("/readyz"),
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
				},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}
	}
	appEnv := envVars("APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "PORT", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER",
		"REDIS_URL", "KAFKA_BROKERS", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "REGION", "TZ")
	appEnv = append(appEnv,
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
		}},
		corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "api-db"}, Key: "password",
		}}},
	)
	initCtr := ctr("migrate", benchMigrateImage, 8081, envVars("DB_HOST", "DB_NAME", "DB_USER"))
	initCtr.LivenessProbe, initCtr.ReadinessProbe = nil, nil // only for sidecars (restartPolicy Always)
	allLabels := map[string]string{
		"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-prod", "app.kubernetes.io/version": "1.2.3",
		"app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": "payments", "pod-template-hash": "7d9f8c6b5",
	}
	for k, v := range labels {
		allLabels[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, GenerateName: "api-7d9f8c6b5-",
			Labels: allLabels,
			Annotations: map[string]string{
				"metadata.github.com/team":          "payments",
				"metadata.github.com/runtime-risks": "internet-exposed,sensitive-data",
				"kubectl.kubernetes.io/restartedAt": "2030-01-01T00:00:00Z",
				"prometheus.io/scrape":              "true",
				"prometheus.io/port":                "9090",
			},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: corev1.PodSpec{
			NodeName:       node,
			InitContainers: []corev1.Container{initCtr},
			Containers: []corev1.Container{
				ctr("api", benchAPIImage, 8080, appEnv),
				ctr("proxy", benchProxyImage, 15001, envVars("ENVOY_UID", "ENVOY_LOG_LEVEL")),
				ctr("log-shipper", benchShipperImage, 2020, envVars("FLUENT_ELASTICSEARCH_HOST", "FLUENT_ELASTICSEARCH_PORT")),
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "api-config"},
				}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To[int32](0o644),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
							Path: "token", ExpirationSeconds: ptr.To[int64](3607),
						}},
						{ConfigMap: &corev1.ConfigMapProjection{
							LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
						}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
							Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
						}}}},
					},
				}}},
			},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](10001),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			ServiceAccountName:            "default",
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
		},
	}
}

// benchSetRunning gives a parked pod the status a kubelet reports for it once it runs: conditions, addresses, the
// init container completed, every container running with its imageID and containerID.
func benchSetRunning(pod *corev1.Pod, i int) {
	now := metav1.Now()
	id := func(container string) string {
		sum := sha256.Sum256([]byte(pod.Namespace + "/" + pod.Name + "/" + container))
		return "containerd://" + hex.EncodeToString(sum[:])
	}
	status := func(c corev1.Container) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: testenv.ImageID(c.Image), ContainerID: id(c.Name),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}
	}
	pod.Status.Phase = corev1.PodRunning
	for _, t := range []corev1.PodConditionType{
		corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled,
	} {
		pod.Status.Conditions = append(pod.Status.Conditions,
			corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	pod.Status.HostIP = "127.0.0.2"
	pod.Status.HostIPs = []corev1.HostIP{{IP: pod.Status.HostIP}}
	pod.Status.PodIP = fmt.Sprintf("127.1.%d.%d", i/250%250, 1+i%250)
	pod.Status.PodIPs = []corev1.PodIP{{IP: pod.Status.PodIP}}
	pod.Status.StartTime = &now
	pod.Status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s := status(c)
		s.Ready, s.Started = true, ptr.To(false)
		s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: s.ContainerID,
		}}
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, s)
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, status(c))
	}
}

// benchParking says where and how benchParking.create makes parked pods.
type benchParking struct {
	c       client.Client
	ns      string
	node    string                // the parked node
	owner   metav1.OwnerReference // from benchOwner
	labels  map[string]string     // added to benchParkedPod's
	workers int                   // concurrent clients
	running bool                  // set the status of a running pod after creating it (not timed)
}

// create creates the parked pods prefix-<from> … prefix-<to-1> and returns the latency of each create, as the
// client sees it.
func (p benchParking) create(ctx context.Context, prefix string, from, to int) ([]time.Duration, error) {
	lat := make([]time.Duration, to-from)
	err := benchForEach(ctx, to-from, p.workers, func(ctx context.Context, i int) error {
		pod := benchParkedPod(p.ns, fmt.Sprintf("%s-%05d", prefix, from+i), p.node, p.owner, p.labels)
		start := time.Now()
		if err := p.c.Create(ctx, pod); err != nil {
			return fmt.Errorf("creating pod %s: %w", pod.Name, err)
		}
		lat[i] = time.Since(start)
		if !p.running {
			return nil
		}
		benchSetRunning(pod, from+i)
		if err := p.c.Status().Update(ctx, pod); err != nil {
			return fmt.Errorf("setting the status of pod %s: %w", pod.Name, err)
		}
		return nil
	})
	return lat, err
}

// benchReviews is the number of pod admission reviews of operation op the tracker answered, every outcome.
func benchReviews(op string) float64 {
	var n float64
	for _, o := range []string{metrics.AdmissionObserved, metrics.AdmissionDropped, metrics.AdmissionUndecodable,
		metrics.AdmissionDryRun, metrics.AdmissionIgnored, metrics.AdmissionMalformed} {
		n += testutil.ToFloat64(tracker.app.Metrics.Admission.WithLabelValues(op, o))
	}
	return n
}

// benchWebhookSwitch removes the installed ValidatingWebhookConfiguration and installs it again, each time waiting
// until the API server has picked the change up. It reinstalls it at cleanup.
type benchWebhookSwitch struct {
	saved  *admissionregistrationv1.ValidatingWebhookConfiguration
	c      client.Client
	probes benchParking // probe pods tell whether the API server calls the webhook
}

func newBenchWebhookSwitch(tb testing.TB, c client.Client, ns, node string) *benchWebhookSwitch {
	tb.Helper()
	name := env.Webhooks.ValidatingWebhooks[0].Name
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(benchCtx(tb), client.ObjectKey{Name: name}, vwc); err != nil {
		tb.Fatalf("reading the installed webhook configuration: %v", err)
	}
	saved := &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   vwc.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: vwc.Name, Labels: vwc.Labels, Annotations: vwc.Annotations},
		Webhooks:   vwc.Webhooks,
	}
	probes := benchParking{c: c, ns: ns, node: node, owner: benchOwner(tb, c, ns), workers: 1}
	s := &benchWebhookSwitch{saved: saved, c: c, probes: probes}
	tb.Cleanup(func() { s.set(tb, true) })
	return s
}

// set installs (on) or removes the webhook configuration and waits until the API server calls (or no longer
// calls) the tracker: it picks configuration changes up asynchronously.
func (s *benchWebhookSwitch) set(tb testing.TB, on bool) {
	tb.Helper()
	ctx := benchCtx(tb)
	var err error
	if on {
		err = s.c.Create(ctx, s.saved.DeepCopy())
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	} else {
		err = client.IgnoreNotFound(s.c.Delete(ctx, s.saved.DeepCopy()))
	}
	if err != nil {
		tb.Fatalf("switching the webhook configuration on=%t: %v", on, err)
	}
	for i := 0; ; i++ {
		before := benchReviews("CREATE")
		if _, err := s.probes.create(ctx, fmt.Sprintf("probe-%t-%d", on, i), 0, 1); err != nil {
			tb.Fatalf("creating a probe pod: %v", err)
		}
		if (benchReviews("CREATE") > before) == on {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the API server did not pick up the webhook configuration change (on=%t)", on)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := benchDeletePods(ctx, s.c, s.probes.ns, nil); err != nil {
		tb.Fatalf("deleting the probe pods: %v", err)
	}
}

// benchHistogram returns the sum and count of the tracker's histogram name (all label values together).
func benchHistogram(tb testing.TB, name string) (sum float64, count uint64) {
	tb.Helper()
	families, err := tracker.reg.Gather()
	if err != nil {
		tb.Fatalf("gathering the tracker's metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			count += m.GetHistogram().GetSampleCount()
		}
	}
	return sum, count
}

// benchPercentile returns the p-quantile (0 < p ≤ 1, nearest rank) of sorted.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchHeap returns the live heap and the heap in use after two collections (the second one frees what
// finalizers of the first kept alive).
func benchHeap() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapInuse
}
