package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// A reference to an object that does not exist is said at once and is Reconciling; after the grace period it is
// Stalled (ReferenceNotFound), which kstatus reports as Failed; it recovers when the object appears. A reference to
// an object that exists without a Stripe ID is said differently and turns Stalled the same way.
func TestReferenceGracePeriod(t *testing.T) {
	ctx, ns := newNamespace(t)
	create(t, newProduct(ns, "plan"))
	price := newPrice(ns, "monthly", 800)
	create(t, price)
	waitReady(t, ctx, price)
	sub := newSubscription(ns, "waiting", "nobody", "monthly")
	create(t, sub)
	c := waitReason(t, ctx, sub, billingv1.ReasonDependencyNotReady)
	if want := "Customer " + ns + "/nobody does not exist; create it or fix the reference"; c.Message != want {
		t.Errorf("message %q, want %q", c.Message, want)
	}
	if got := kstatus(t, sub); got != status.InProgressStatus {
		t.Errorf("within the grace period: kstatus %s, want InProgress", got)
	}
	c = waitReason(t, ctx, sub, billingv1.ReasonReferenceNotFound)
	assertStalled(t, sub)
	if !strings.Contains(c.Message, "nobody does not exist") {
		t.Errorf("Stalled message %q", c.Message)
	}
	if got := kstatus(t, sub); got != status.FailedStatus {
		t.Errorf("after the grace period: kstatus %s, want Failed", got)
	}
	create(t, newCustomer(ns, "nobody"))
	waitReady(t, ctx, sub)

	// A Product that exists but has no Stripe ID (observed, naming nothing).
	stuck := newProduct(ns, "stuck")
	stuck.Spec.ManagementPolicy = billingv1.ManagementObserve
	orphan := newPrice(ns, "orphan", 900)
	orphan.Spec.ProductRef.Name = "stuck"
	create(t, stuck, orphan)
	testenv.Eventually(t, 90*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(orphan), orphan); err != nil {
			return err
		}
		r := meta.FindStatusCondition(orphan.Status.Conditions, billingv1.ConditionReady)
		if r == nil || r.Reason != billingv1.ReasonReferenceNotFound {
			return fmt.Errorf("not Stalled yet: %+v", orphan.Status.Conditions)
		}
		want := "Product " + ns + "/stuck exists but has no Stripe ID yet (its Ready condition: False, " +
			billingv1.ReasonNothingToObserve + ")"
		if !strings.HasPrefix(r.Message, want) {
			return fmt.Errorf("message %q, want it to start with %q", r.Message, want)
		}
		return nil
	})
	setPolicy(t, ctx, stuck, billingv1.ManagementManage)
	waitReady(t, ctx, orphan)
}
