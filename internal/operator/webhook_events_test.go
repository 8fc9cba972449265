package operator

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
)

// With --webhook-events=false no event reaches the operator, so the reconcile loop owns a Subscription's state,
// period and latest invoice, and writes them from its own Stripe reads.
func TestWithoutWebhookEventsTheLoopOwnsTheLifecycle(t *testing.T) {
	sim := stripesim.New(stripesim.Options{RateLimitOff: true, StrictPaymentMethods: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "noevents")
	if err != nil {
		t.Fatal(err)
	}
	ref := types.NamespacedName{Namespace: ns, Name: credentials.DefaultSecretName}
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ref.Name},
		Data: map[string][]byte{credentials.APIKeyField: []byte("sk_test_no_events")}}); err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	mgr, err := New(mctx, env.Config, Config{MetricsAddr: "0", ProbeAddr: "0", WebhookAddr: "0",
		SkipNameValidation: true, CredentialsSecret: ref, NamespaceSecretName: ref.Name,
		Stripe:      stripe.Config{APIBase: srv.URL},
		Controllers: controllers.Options{ClusterName: "test", Webhooks: false}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	objs := []client.Object{
		&billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "payer"},
			Spec: billingv1.CustomerSpec{Email: "payer@example.com", DefaultPaymentMethod: "pm_card_visa"}},
		&billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
			Spec: billingv1.ProductSpec{Name: "Plan"}},
		&billingv1.Price{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "monthly"}, Spec: billingv1.PriceSpec{
			ProductRef: &billingv1.LocalObjectReference{Name: "plan"}, Currency: "usd", UnitAmount: 500,
			Recurring: &billingv1.Recurring{Interval: billingv1.IntervalMonth}}},
		&billingv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sub"},
			Spec: billingv1.SubscriptionSpec{CustomerRef: &billingv1.LocalObjectReference{Name: "payer"},
				Items: []billingv1.SubscriptionItem{{PriceRef: &billingv1.LocalObjectReference{Name: "monthly"},
					Quantity: ptr.To[int64](1)}}}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	sub := &billingv1.Subscription{}
	var last error
	for ctx.Err() == nil {
		last = env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sub"}, sub)
		if last == nil && meta.IsStatusConditionTrue(sub.Status.Conditions, billingv1.ConditionReady) {
			break
		}
		if last == nil {
			last = fmt.Errorf("not Ready: %+v", sub.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("the Subscription did not become Ready: %v", last)
	}
	if sub.Status.StripeState != "active" || sub.Status.CurrentPeriodEnd == nil || sub.Status.LatestInvoice == nil ||
		sub.Status.LatestInvoice.Status != "paid" {
		t.Fatalf("the lifecycle fields were not written without events: %+v", sub.Status)
	}
	for _, mf := range sub.ManagedFields {
		if mf.Subresource == "status" && strings.Contains(mf.FieldsV1.String(), `"f:stripeStatus"`) &&
			mf.Manager != "stripe-operator" {
			t.Errorf("stripeStatus written by %s, want the reconcile loop (stripe-operator)", mf.Manager)
		}
	}
}
