package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// Each row of the error table (docs/architecture.md, "The reconcile loop"), produced by the simulator's fault injection
// on customer creation.
func TestErrorTable(t *testing.T) {
	transient := []struct {
		name   string
		fault  stripesim.Fault
		reason string
	}{
		{"429 rate_limit", stripesim.Fault{Kind: "error", Status: 429, Code: "rate_limit"},
			billingv1.ReasonRateLimited},
		{"500 api_error", stripesim.Fault{Kind: "error"}, billingv1.ReasonStripeUnavailable},
		{"503", stripesim.Fault{Kind: "error", Status: 503}, billingv1.ReasonStripeUnavailable},
		{"409 idempotency_key_in_use", stripesim.Fault{Kind: "error", Status: 409, Code: "idempotency_key_in_use"},
			billingv1.ReasonRequestInProgress},
		{"429 lock_timeout", stripesim.Fault{Kind: "error", Status: 429, Code: "lock_timeout"},
			billingv1.ReasonRequestInProgress},
	}
	for _, c := range transient {
		t.Run(c.name+" is Reconciling and retried until Ready", func(t *testing.T) {
			ctx, ns := newNamespace(t)
			c.fault.Method, c.fault.Path = "POST", "/v1/customers"
			f, err := sim.AddFault(c.fault)
			if err != nil {
				t.Fatal(err)
			}
			lists := calls("GET /v1/customers")
			cus := newCustomer(ns, "transient")
			create(t, cus)
			waitReason(t, ctx, cus, c.reason)
			if isStalled(cus) || kstatus(t, cus) != status.InProgressStatus {
				t.Errorf("a transient error must be InProgress, not Stalled: %+v", cus.Status.Conditions)
			}
			// Retried on its own: the fault fires again.
			fired := faultFired(f.ID)
			testenv.Eventually(t, 30*time.Second, func() error {
				if faultFired(f.ID) <= fired {
					return fmt.Errorf("not retried")
				}
				return nil
			})
			sim.RemoveFault(f.ID)
			cus = waitReady(t, ctx, cus)
			if n := sim.ObjectsByUID()["customer"][string(cus.UID)]; n != 1 {
				t.Errorf("%d customers", n)
			}
			// A create refused for the rate limit was not run: it is sent again without looking for it first.
			if n := calls("GET /v1/customers") - lists; c.fault.Code == "rate_limit" && n != 0 {
				t.Errorf("%d customer lists after creates refused with a 429 rate_limit", n)
			}
		})
	}

	t.Run("a Customer deleted while its creates are refused for the rate limit goes without a list", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		f, err := sim.AddFault(stripesim.Fault{Kind: "error", Status: 429, Code: "rate_limit", Method: "POST",
			Path: "/v1/customers"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.RemoveFault(f.ID) })
		lists := calls("GET /v1/customers")
		cus := newCustomer(ns, "refused")
		create(t, cus)
		waitReason(t, ctx, cus, billingv1.ReasonRateLimited)
		if err := env.Client.Delete(ctx, cus); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ctx, cus)
		if n := calls("GET /v1/customers") - lists; n != 0 {
			t.Errorf("%d customer lists for a create Stripe never ran", n)
		}
		if n := sim.ObjectsByUID()["customer"][string(cus.UID)]; n != 0 {
			t.Errorf("%d customers in Stripe", n)
		}
	})

	t.Run("400 invalid_request_error is Stalled until the spec changes", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		f, err := sim.AddFault(stripesim.Fault{Kind: "error", Status: 400, Code: "parameter_invalid_empty",
			Method: "POST", Path: "/v1/customers", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.RemoveFault(f.ID) })
		cus := newCustomer(ns, "invalid")
		create(t, cus)
		cond := waitReason(t, ctx, cus, billingv1.ReasonInvalidRequest)
		if !strings.Contains(cond.Message, "req_") {
			t.Errorf("the message lacks Stripe's request ID: %q", cond.Message)
		}
		assertStalled(t, cus)
		// A Customer whose create succeeds at once: its first Ready is not an Event.
		quiet := newCustomer(ns, "quiet")
		create(t, quiet)
		waitReady(t, ctx, quiet)
		// No retry on its own: the fault is spent, yet the object stays Stalled.
		time.Sleep(2 * time.Second)
		waitReason(t, ctx, cus, billingv1.ReasonInvalidRequest)
		// A spec change retries.
		cus.Spec.Name = "fixed"
		if err := env.Client.Update(ctx, cus); err != nil {
			t.Fatal(err)
		}
		waitReady(t, ctx, cus)
		assertEvent(t, ns, cus.Name, corev1.EventTypeWarning, billingv1.ReasonInvalidRequest)
		// The recovery is recorded; by then the quiet Customer's Ready, seconds older, would have been too.
		assertEvent(t, ns, cus.Name, corev1.EventTypeNormal, billingv1.ReasonSynced)
		l := &corev1.EventList{}
		if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Items {
			if e.InvolvedObject.Name == quiet.Name {
				t.Errorf("an Event for a first Ready: %s %s %q", e.Type, e.Reason, e.Message)
			}
		}
	})

	t.Run("404 on a referenced ID is ReferenceNotFound", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		sub := &billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan"},
			Spec: billingv1.SubscriptionSpec{CustomerID: "cus_doesnotexist",
				Items: []billingv1.SubscriptionItem{{PriceID: "price_doesnotexist"}}}}
		create(t, sub)
		waitReason(t, ctx, sub, billingv1.ReasonReferenceNotFound)
		assertStalled(t, sub)
	})

	t.Run("401 is AuthenticationFailed and the key is not used again until its Secret changes", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		sim.RegisterKey(stripesim.KeyConfig{Key: "sk_test_rolled_key", Revoked: true})
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
			Data: map[string][]byte{credentials.APIKeyField: []byte("sk_test_rolled_key")}}
		create(t, secret)
		a, b := newCustomer(ns, "first"), newCustomer(ns, "second")
		create(t, a)
		waitReason(t, ctx, a, billingv1.ReasonAuthenticationFailed)
		unauthorized := count401()
		create(t, b)
		waitReason(t, ctx, b, billingv1.ReasonAuthenticationFailed)
		if n := count401() - unauthorized; n != 0 {
			t.Errorf("%d more requests with the refused key", n)
		}
		// A new key in the Secret is tried, and works.
		patch := client.MergeFrom(secret.DeepCopy())
		secret.Data[credentials.APIKeyField] = []byte("sk_test_good_key")
		if err := env.Client.Patch(ctx, secret, patch); err != nil {
			t.Fatal(err)
		}
		waitReady(t, ctx, a)
		waitReady(t, ctx, b)
	})

	t.Run("403 is PermissionDenied naming the permission", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		sim.RegisterKey(stripesim.KeyConfig{Key: "rk_test_prices_only", Permissions: []string{"rak_price_write"}})
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
			Data: map[string][]byte{credentials.APIKeyField: []byte("rk_test_prices_only")}})
		cus := newCustomer(ns, "restricted")
		create(t, cus)
		cond := waitReason(t, ctx, cus, billingv1.ReasonPermissionDenied)
		// The create needs rak_customer_write; a retry that first lists (recovery) needs rak_customer_read.
		if !strings.Contains(cond.Message, "'rak_customer_") {
			t.Errorf("message does not name the permission: %q", cond.Message)
		}
	})

	t.Run("a live key is refused without --allow-live-mode", func(t *testing.T) {
		ctx, ns := newNamespace(t)
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
			Data: map[string][]byte{credentials.APIKeyField: []byte("sk_live_real_money_key")}})
		cus := newCustomer(ns, "live")
		before := writes()
		create(t, cus)
		waitReason(t, ctx, cus, billingv1.ReasonLiveModeNotAllowed)
		if n := writes() - before; n != 0 {
			t.Errorf("%d Stripe writes with a live key", n)
		}
	})
}

func count401() int64 {
	var n int64
	for _, byStatus := range sim.Stats() {
		n += byStatus["401"]
	}
	return n
}

func assertStalled(t *testing.T, obj billingv1.StripeObject) {
	t.Helper()
	if !isStalled(obj) {
		t.Errorf("not Stalled: %+v", obj.GetStripeStatus().Conditions)
	}
	if got := kstatus(t, obj); got != status.FailedStatus {
		t.Errorf("kstatus %s, want Failed", got)
	}
}

func assertEvent(t *testing.T, ns, name, typ, reason string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		l := &corev1.EventList{}
		if err := env.Client.List(t.Context(), l, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range l.Items {
			if e.InvolvedObject.Name == name && e.Type == typ && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no %s event %s for %s among %d", typ, reason, name, len(l.Items))
	})
}

// kstatus computes what Flux, Argo CD and kubectl's kstatus library report for obj.
func kstatus(t *testing.T, obj billingv1.StripeObject) status.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func TestKstatus(t *testing.T) {
	ctx, ns := newNamespace(t)
	// InProgress while reconciling: a subscription waiting for its customer.
	sub := newSubscription(ns, "waiting", "nobody", "nothing")
	create(t, sub)
	waitReason(t, ctx, sub, billingv1.ReasonDependencyNotReady)
	if got := kstatus(t, sub); got != status.InProgressStatus {
		t.Errorf("waiting subscription: %s, want InProgress", got)
	}
	// Current when Ready.
	cus := newCustomer(ns, "current")
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	if got := kstatus(t, cus); got != status.CurrentStatus {
		t.Errorf("ready customer: %s, want Current", got)
	}
	// Failed when Stalled: the DeletedInStripe case.
	if _, err := simClient().API.Customers.Del(cus.Status.ID, nil); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cus.DeepCopy())
	cus.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "now"}
	if err := env.Client.Patch(ctx, cus, patch); err != nil {
		t.Fatal(err)
	}
	waitReason(t, ctx, cus, billingv1.ReasonDeletedInStripe)
	if got := kstatus(t, cus); got != status.FailedStatus {
		t.Errorf("stalled customer: %s, want Failed", got)
	}
}

// Deleting a namespace deletes everything in it at once, the credentials Secret included. envtest runs no
// namespace controller, so the test does its part: it deletes the Secret and the billing objects together. The
// in-use finalizer keeps the Secret until the billing objects' deletion policies are carried out, then lets it go.
func TestNamespaceDeletionCompletes(t *testing.T) {
	ctx, ns := newNamespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
		Data: map[string][]byte{credentials.APIKeyField: []byte("sk_test_team_key")}}
	cus := newCustomer(ns, "leaving")
	cus.Spec.DeletionPolicy = billingv1.CustomerDelete
	create(t, secret, cus)
	cus = waitReady(t, ctx, cus)
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
			return err
		}
		if !slices.Contains(secret.Finalizers, billingv1.CredentialsInUseFinalizer) {
			return fmt.Errorf("no in-use finalizer on the Secret: %v", secret.Finalizers)
		}
		return nil
	})
	if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{secret, cus} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, ctx, cus)
	waitGone(t, ctx, secret)
	if got := stripeCustomer(t, cus.Status.ID); !got.Deleted {
		t.Error("the Delete policy was not carried out in Stripe")
	}
}

// staleGetClient serves Get from a snapshot taken earlier, as an informer cache that is behind.
type staleGetClient struct {
	client.Client
	snapshot *billingv1.Customer
}

func (c staleGetClient) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	c.snapshot.DeepCopyInto(obj.(*billingv1.Customer))
	return nil
}

// A pass that reads a version older than the object's (the cache is behind the loop's own last write) meets a
// conflict when it stores the finalizer and the pending-create record. It must come back without having called
// Stripe: the newer version may differ only in status, which the predicates do not pass, so no event would bring the
// object back.
func TestFinalizerConflictComesBack(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "behind")
	create(t, cus)
	snapshot := cus.DeepCopy()
	waitReady(t, ctx, cus) // the suite's manager added the finalizer and wrote status since the snapshot
	r := &Reconciler[*billingv1.Customer]{Client: staleGetClient{Client: env.Client, snapshot: snapshot},
		Credentials: newResolver(env.Client), External: customerExternal{},
		New: func() *billingv1.Customer { return &billingv1.Customer{} }}
	posts := calls("POST /v1/customers")
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cus)})
	if err != nil {
		t.Fatal(err)
	}
	if n := calls("POST /v1/customers") - posts; n != 0 {
		t.Errorf("%d Stripe creates from a stale read", n)
	}
	if res.RequeueAfter <= 0 {
		t.Errorf("a conflict adding the finalizer was dropped: %+v", res)
	}
}
