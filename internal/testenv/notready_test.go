package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

// readyLabel set to "false" sends a pod to the pod-crash-loop stage of kwok-stages.yaml instead of pod-ready.
const readyLabel = "e2e.deployment-tracker.io/ready"

// TestNotReadyPods checks the pod-crash-loop stage: labelled pods start (their images pulled) but crash-loop
// and never become Ready, so a Deployment of them exceeds its progress deadline; other pods are unaffected.
func TestNotReadyPods(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)

	t.Run("labelled pods run but never become ready", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		// kwok picks at random among the stages that match a pod: with several pods, an overlap between
		// pod-ready and pod-crash-loop would show as some of them becoming Ready.
		labels := map[string]string{"app": "crashing-pods", readyLabel: "false"}
		var pods []*corev1.Pod
		for i := range 3 {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("crashing-%d", i), Labels: labels},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
					Containers: []corev1.Container{
						{Name: "app", Image: pinned},
						{Name: "sidecar", Image: "nginx:1.27"},
					},
				},
			}
			if err := env.Client.Create(ctx, pod); err != nil {
				t.Fatalf("create pod: %v", err)
			}
			pods = append(pods, pod)
		}
		for _, pod := range pods {
			eventually(t, pod.Name+" Running", func(ctx context.Context) (bool, string) {
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
					return false, err.Error()
				}
				return pod.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %q", pod.Status.Phase)
			})
			checkCrashLooping(t, pod)
		}

		// It stays so: no other stage picks the pods up once they run.
		consistently(t, "pods crash-looping", 3*time.Second, func(ctx context.Context) (bool, string) {
			for _, pod := range pods {
				var p corev1.Pod
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
					return false, err.Error()
				}
				if p.Status.Phase != corev1.PodRunning || podCondition(&p, corev1.PodReady) != corev1.ConditionFalse {
					return false, fmt.Sprintf("%s: phase %q, Ready %q", p.Name, p.Status.Phase, podCondition(&p, corev1.PodReady))
				}
			}
			return true, ""
		})
		for _, pod := range pods {
			checkCrashLooping(t, pod)
		}

		// pod-delete still removes them.
		for _, pod := range pods {
			if err := env.Client.Delete(ctx, pod); err != nil {
				t.Fatalf("delete pod: %v", err)
			}
		}
		eventually(t, "crash-looping pods gone", func(ctx context.Context) (bool, string) {
			var left corev1.PodList
			if err := env.Client.List(ctx, &left, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
				return false, err.Error()
			}
			return len(left.Items) == 0, fmt.Sprintf("%d pods left", len(left.Items))
		})
	})

	t.Run("deployment exceeds its progress deadline", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		labels := map[string]string{"app": "crashing", readyLabel: "false"}
		deploy := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crashing"},
			Spec: appsv1.DeploymentSpec{
				Replicas:                ptr.To[int32](1),
				ProgressDeadlineSeconds: ptr.To[int32](5),
				Selector:                &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
				},
			},
		}
		if err := env.Client.Create(ctx, deploy); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		eventually(t, "Progressing=False ProgressDeadlineExceeded", func(ctx context.Context) (bool, string) {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(deploy), deploy); err != nil {
				return false, err.Error()
			}
			for _, c := range deploy.Status.Conditions {
				if c.Type == appsv1.DeploymentProgressing {
					return c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded",
						fmt.Sprintf("Progressing %s %s: %s", c.Status, c.Reason, c.Message)
				}
			}
			return false, fmt.Sprintf("no Progressing condition in %+v", deploy.Status.Conditions)
		})
		st := deploy.Status
		if diff := cmp.Diff([]int32{1, 1, 0, 0}, []int32{st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas}); diff != "" {
			t.Errorf("deployment replicas, updated, ready, available (-want +got):\n%s", diff)
		}

		// Its pod is the one crash-looping, not merely slow to start.
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
			t.Fatalf("list pods: %v", err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("deployment pods = %d, want 1", len(pods.Items))
		}
		checkCrashLooping(t, &pods.Items[0])
	})

	// The label only opts in: without it, or with any other value, pods become Ready as before.
	for _, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{name: "unlabelled pod becomes ready"},
		{name: "pod labelled ready true becomes ready", labels: map[string]string{readyLabel: "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "ready-", Labels: tc.labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			}
			if err := env.Client.Create(t.Context(), pod); err != nil {
				t.Fatalf("create pod: %v", err)
			}
			eventually(t, "pod Ready", func(ctx context.Context) (bool, string) {
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
					return false, err.Error()
				}
				ready := podCondition(pod, corev1.PodReady)
				return pod.Status.Phase == corev1.PodRunning && ready == corev1.ConditionTrue,
					fmt.Sprintf("phase %q, Ready %q", pod.Status.Phase, ready)
			})
			for _, s := range pod.Status.ContainerStatuses {
				if !s.Ready || s.State.Running == nil || s.RestartCount != 0 {
					t.Errorf("container %s: ready %t, restartCount %d, state %+v, want ready and running", s.Name, s.Ready, s.RestartCount, s.State)
				}
			}
		})
	}
}

// checkCrashLooping checks pod has the status the pod-crash-loop stage gives: Running, not Ready, each
// container's image pulled and waiting in CrashLoopBackOff after one failed run, init containers completed.
func checkCrashLooping(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("%s: phase = %q, want Running", pod.Name, pod.Status.Phase)
	}
	type cond struct{ Status, Reason, Message string }
	gotConds := map[corev1.PodConditionType]cond{}
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			gotConds[c.Type] = cond{Status: string(c.Status), Reason: c.Reason, Message: c.Message}
		}
	}
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	// As the kubelet words it (pkg/kubelet/status/generate.go).
	unready := fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
	wantConds := map[corev1.PodConditionType]cond{
		corev1.PodInitialized:  {Status: "True"},
		corev1.PodReady:        {Status: "False", Reason: "ContainersNotReady", Message: unready},
		corev1.ContainersReady: {Status: "False", Reason: "ContainersNotReady", Message: unready},
	}
	if diff := cmp.Diff(wantConds, gotConds); diff != "" {
		t.Errorf("%s: conditions (-want +got):\n%s", pod.Name, diff)
	}

	if len(pod.Status.ContainerStatuses) != len(pod.Spec.Containers) {
		t.Fatalf("%s: %d container statuses, want %d", pod.Name, len(pod.Status.ContainerStatuses), len(pod.Spec.Containers))
	}
	for i, s := range pod.Status.ContainerStatuses {
		image := pod.Spec.Containers[i].Image
		if s.Image != image || s.ImageID != testenv.ImageID(image) {
			t.Errorf("%s/%s: image %q, imageID %q, want %q, %q", pod.Name, s.Name, s.Image, s.ImageID, image, testenv.ImageID(image))
		}
		if s.ContainerID == "" || s.Ready || ptr.Deref(s.Started, true) || s.RestartCount != 1 {
			t.Errorf("%s/%s: containerID %q, ready %t, started %v, restartCount %d, want a containerID, not ready, not started, 1 restart",
				pod.Name, s.Name, s.ContainerID, s.Ready, ptr.Deref(s.Started, true), s.RestartCount)
		}
		if w := s.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" || s.State.Running != nil || s.State.Terminated != nil {
			t.Errorf("%s/%s: state %+v, want waiting CrashLoopBackOff", pod.Name, s.Name, s.State)
		}
		if last := s.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 || last.Reason != "Error" || last.ContainerID != s.ContainerID {
			t.Errorf("%s/%s: lastState %+v, want terminated with exit code 1, reason Error, containerID %s", pod.Name, s.Name, s.LastTerminationState, s.ContainerID)
		}
	}

	if len(pod.Status.InitContainerStatuses) != len(pod.Spec.InitContainers) {
		t.Fatalf("%s: %d init container statuses, want %d", pod.Name, len(pod.Status.InitContainerStatuses), len(pod.Spec.InitContainers))
	}
	for i, s := range pod.Status.InitContainerStatuses {
		image := pod.Spec.InitContainers[i].Image
		if s.ImageID != testenv.ImageID(image) || s.ContainerID == "" {
			t.Errorf("%s/%s: imageID %q, containerID %q, want %q and a containerID", pod.Name, s.Name, s.ImageID, s.ContainerID, testenv.ImageID(image))
		}
		if term := s.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("init container %s/%s: state %+v, want terminated Completed with exit code 0", pod.Name, s.Name, s.State)
		}
	}
}

// podCondition returns the status of pod's condition of type typ, empty when it has none.
func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// consistently polls cond for d, failing the test as soon as it returns false.
func consistently(t *testing.T, what string, d time.Duration, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for {
		if ok, why := cond(ctx); !ok {
			if ctx.Err() != nil {
				return // the window ended during the call
			}
			t.Fatalf("%s: %s", what, why)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
