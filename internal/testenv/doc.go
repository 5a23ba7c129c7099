// Package testenv runs a real, local Kubernetes control plane for integration and end-to-end tests: etcd and
// kube-apiserver through controller-runtime's envtest, plus kube-controller-manager, kube-scheduler and kwok as
// child processes, so that Deployments, ReplicaSets, Jobs and the garbage collector behave as in a cluster and
// pods are scheduled onto fake kwok nodes, become Running and report container image IDs.
//
// All binaries come from one directory, built from the Go module proxy by hack/k8s-bin.sh into
// bin/k8s/<KUBERNETES_VERSION> (hack/versions.env); KUBEBUILDER_ASSETS overrides it. Everything listens on
// 127.0.0.1 with free ports, and kwok hands out loopback node and pod IPs, so nothing ever leaves the machine.
//
// A test package starts one Env in TestMain and shares it:
//
//	var env *testenv.Env
//	var startErr error
//
//	func TestMain(m *testing.M) {
//		env, startErr = testenv.Start(context.Background(), testenv.Options{})
//		code := m.Run()
//		if env != nil {
//			if code != 0 {
//				env.KeepLog()
//			}
//			if err := env.Stop(); err != nil && code == 0 {
//				code = 1
//			}
//		}
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		testenv.SkipOrFail(t, startErr) // skips loudly when the binaries are missing, unless CI=true
//		...
//	}
//
// An end-to-end test that serves admission webhooks hands their configuration to Start, which installs it
// pointing at 127.0.0.1 with a CA envtest generates, and runs its manager's webhook server where it points:
//
//	env, err := testenv.Start(ctx, testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
//		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{podHook}, // clientConfig.service.path: /validate-pod
//	}})
//	...
//	mgr, err := manager.New(env.Config, manager.Options{
//		Scheme:                 env.Scheme,
//		WebhookServer:          webhook.NewServer(env.WebhookServerOptions()),
//		Metrics:                metricsserver.Options{BindAddress: "0"},
//		HealthProbeBindAddress: "0",
//	})
//	mgr.GetWebhookServer().Register("/validate-pod", &webhook.Admission{Handler: handler})
//	go mgr.Start(ctx)
//
// Pods on the fake nodes become Running with status.containerStatuses[].imageID set as a container runtime
// would (see ImageID); Job pods complete; deleted pods go away.
package testenv
