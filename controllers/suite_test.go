package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/stripesim/schemacheck"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// The suite runs the controllers against a real API server (envtest, built from source) and stripesim over HTTP.

const (
	// referenceGrace is the suite's --reference-grace-period: long enough for the tests that watch a wait.
	referenceGrace    = 8 * time.Second
	operatorNamespace = "stripe-operator-system"
	testAPIKey        = "sk_test_controllers_suite_key"
)

var (
	env     *testenv.Env
	sim     *stripesim.Sim
	simURL  string
	logs    testenv.SyncBuffer
	manager *runningManager
)

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test control plane:", err)
		os.Exit(1)
	}
	sim = stripesim.New(stripesim.Options{RateLimitOff: true, Record: true, Seed: 7,
		// Stripe's payment method rules: a default must be attached to the customer first.
		StrictPaymentMethods: true})
	rec := schemacheck.NewRecorder(sim)
	srv := httptest.NewServer(rec)
	simURL = srv.URL
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		_, _ = fmt.Fprintln(&logs, prefix, args)
	}, funcr.Options{Verbosity: 2}))

	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: credentials.DefaultSecretName},
		Data:       map[string][]byte{credentials.APIKeyField: []byte(testAPIKey)},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	manager, err = startManager()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 && os.Getenv("DUMP_LOGS") != "" {
		fmt.Fprintln(os.Stderr, logs.String())
	}
	manager.stop()
	srv.Close()
	_ = env.Stop()
	if code == 0 {
		code = validateSchema(rec)
	}
	os.Exit(code)
}

// validateSchema validates every response stripesim sent during the suite, and every event it stored, against
// Stripe's 2023-10-16 OpenAPI specification (stripe-mock's): 1, with up to 20 of them printed, if any violates it.
func validateSchema(rec *schemacheck.Recorder) int {
	o, err := schemacheck.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loading the OpenAPI specification:", err)
		return 1
	}
	events := sim.EventObjects()
	n, all := o.Validate(rec.Exchanges(), events)
	keys, counts := schemacheck.Distinct(all)
	fmt.Printf("schema conformance of stripesim over the controllers suite: %d responses and %d event objects, "+
		"%d violations (%d distinct)\n", n, len(events), len(all), len(keys))
	if len(all) == 0 {
		return 0
	}
	for i, k := range keys {
		if i == 20 {
			fmt.Fprintf(os.Stderr, "  … and %d more\n", len(keys)-20)
			break
		}
		fmt.Fprintf(os.Stderr, "  %s (x%d)\n", k, counts[k])
	}
	return 1
}

type runningManager struct {
	cancel context.CancelFunc
	done   chan error
	// client is the manager's client, reading from its cache.
	client client.Client
}

func (m *runningManager) stop() {
	m.cancel()
	if err := <-m.done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
}

// startManager starts the operator's controllers in-process, as cmd/stripe-operator wires them, with the suite's
// options changed by mods.
func startManager(mods ...func(*Options)) (*runningManager, error) {
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
		NewClient:  countingClient,
		// The cache the operator runs with (internal/operator).
		Cache: cache.Options{DefaultTransform: StripForCache},
	})
	if err != nil {
		return nil, err
	}
	resolver := newResolver(mgr.GetClient())
	resolver.Live = mgr.GetAPIReader()
	// Processed events keep their payload 5 s (the tests look at them) before they are compacted.
	opts := Options{ResyncInterval: time.Hour, ResyncSweep: time.Second, ClusterName: "test-cluster", Webhooks: true,
		EventRetention: 5 * time.Second, EventCompactionDelay: 5 * time.Second, EventRouteBackoff: 20 * time.Millisecond,
		ReferenceGrace: referenceGrace}
	for _, mod := range mods {
		mod(&opts)
	}
	if err := Setup(mgr, resolver, opts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &runningManager{cancel: cancel, done: make(chan error, 1), client: mgr.GetClient()}
	go func() { m.done <- mgr.Start(ctx) }()
	return m, nil
}

func newNamespace(t *testing.T) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns, err := env.Namespace(ctx, "ctrl")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, ns
}

// waitReady waits until obj is Ready for its current generation and returns it fresh.
func waitReady[T billingv1.StripeObject](t *testing.T, ctx context.Context, obj T) T {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.GetStripeStatus().Conditions, billingv1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("not ready: %+v", obj.GetStripeStatus().Conditions)
		}
		return nil
	})
	return obj
}

// waitCondition waits until obj's Ready condition has the reason, and returns it.
func waitReason[T billingv1.StripeObject](t *testing.T, ctx context.Context, obj T, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.GetStripeStatus().Conditions, billingv1.ConditionReady)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("Ready reason is not %s: %+v", reason, obj.GetStripeStatus().Conditions)
		}
		got = *c
		return nil
	})
	return got
}

// waitGone waits until obj no longer exists.
func waitGone(t *testing.T, ctx context.Context, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (finalizers %v): %w", obj.GetFinalizers(), err)
	})
}

// writes counts the POST and DELETE requests the simulator answered.
func writes() int64 {
	var n int64
	for pattern, byStatus := range sim.Stats() {
		if strings.HasPrefix(pattern, "POST ") || strings.HasPrefix(pattern, "DELETE ") {
			for _, c := range byStatus {
				n += c
			}
		}
	}
	return n
}

// calls counts the requests the simulator answered for an endpoint pattern, for example "GET /v1/customers/{id}".
func calls(pattern string) int64 {
	var n int64
	for _, c := range sim.Stats()[pattern] {
		n += c
	}
	return n
}

// simClient is a stripe-go client on the simulator, for checking what Stripe holds.
func simClient() *stripe.Client {
	k, _ := stripe.ParseKey(testAPIKey)
	return stripe.NewFactory(stripe.Config{APIBase: simURL, TestRate: 1000}).Client(k, "checks")
}

// apiWrites counts the operator's writes to the API server by namespace/name (Events aside: they go through the
// recorder's own client).
var apiWrites = struct {
	sync.Mutex
	byObject map[string][]string
}{byObject: map[string][]string{}}

func countWrite(ns, name, what string) {
	apiWrites.Lock()
	defer apiWrites.Unlock()
	key := ns + "/" + name
	apiWrites.byObject[key] = append(apiWrites.byObject[key], what)
}

// writesTo returns the operator's writes to one object so far, in order.
func writesTo(ns, name string) []string {
	apiWrites.Lock()
	defer apiWrites.Unlock()
	return slices.Clone(apiWrites.byObject[ns+"/"+name])
}

// countingClient is the manager's client with every write counted.
func countingClient(cfg *rest.Config, opts client.Options) (client.Client, error) {
	c, err := client.NewWithWatch(cfg, opts)
	if err != nil {
		return nil, err
	}
	applied := func(obj runtime.ApplyConfiguration) (string, string) {
		var m struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		b, _ := json.Marshal(obj)
		_ = json.Unmarshal(b, &m)
		return m.Metadata.Namespace, m.Metadata.Name
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			countWrite(obj.GetNamespace(), obj.GetName(), "create")
			if err := injectedFault("create", obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := injectedFault("delete", obj); err != nil {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			countWrite(obj.GetNamespace(), obj.GetName(), "update")
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch,
			opts ...client.PatchOption) error {
			countWrite(obj.GetNamespace(), obj.GetName(), "patch")
			if err := injectedFault("patch", obj); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object,
			opts ...client.SubResourceUpdateOption) error {
			countWrite(obj.GetNamespace(), obj.GetName(), sub+" update")
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
			opts ...client.SubResourcePatchOption) error {
			countWrite(obj.GetNamespace(), obj.GetName(), sub+" patch")
			if err := injectedFault(sub+" patch", obj); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration,
			opts ...client.SubResourceApplyOption) error {
			ns, name := applied(obj)
			countWrite(ns, name, sub+" apply")
			return c.SubResource(sub).Apply(ctx, obj, opts...)
		},
	}), nil
}

// writeFault, when set, makes the manager's writes it returns an error for fail (a crash at that point, as far as
// the API server's state goes).
var writeFault atomic.Pointer[func(verb string, obj client.Object) error]

func injectedFault(verb string, obj client.Object) error {
	if f := writeFault.Load(); f != nil {
		return (*f)(verb, obj)
	}
	return nil
}

// newResolver resolves credentials as the operator does, against the simulator.
func newResolver(reader client.Reader) *credentials.Resolver {
	return &credentials.Resolver{
		Reader:              reader,
		Default:             types.NamespacedName{Namespace: operatorNamespace, Name: credentials.DefaultSecretName},
		NamespaceSecretName: credentials.DefaultSecretName,
		Factory:             stripe.NewFactory(stripe.Config{APIBase: simURL, Logger: ctrl.Log.WithName("stripe")}),
	}
}
