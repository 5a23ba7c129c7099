package webhook

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// scopedObserver tracks one namespace, as the tracker of a namespaced install does.
type scopedObserver struct {
	*bufferedObserver
	namespace string
}

func (o scopedObserver) InScope(namespace string) bool { return namespace == o.namespace }

// A cluster-wide webhook in front of a namespaced tracker: the reviews of other namespaces are not handed on,
// and are counted ignored.
func TestHandlerScope(t *testing.T) {
	obs := scopedObserver{bufferedObserver: newObserver(8), namespace: "shop"}
	reg := prometheus.NewRegistry()
	h := New(obs, metrics.New(reg))
	for _, namespace := range []string{"shop", "other", "kube-system"} {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create, Namespace: namespace,
			Object: runtime.RawExtension{Raw: podJSON(t, simplePod())},
		}}
		if resp := h.Handle(t.Context(), req); !resp.Allowed {
			t.Errorf("Handle(%s) = %+v, want allowed", namespace, resp.AdmissionResponse)
		}
	}
	got := obs.drain()
	if len(got) != 1 || got[0].Namespace != "shop" {
		t.Errorf("observed %+v, want the pod of shop only", got)
	}
	want := map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1, {"CREATE", metrics.AdmissionIgnored}: 2}
	if diff := cmp.Diff(want, admissionCounts(t, reg)); diff != "" {
		t.Errorf("admission counts (-want +got):\n%s", diff)
	}
}
