package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// newCoupon is a 20% forever coupon.
func newCoupon(ns, name string) *billingv1.Coupon {
	pct := intstr.FromInt32(20)
	return &billingv1.Coupon{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.CouponSpec{Name: "Coupon " + name, PercentOff: &pct, Duration: billingv1.CouponForever}}
}

func newPromotionCode(ns, name, coupon, code string) *billingv1.PromotionCode {
	return &billingv1.PromotionCode{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.PromotionCodeSpec{CouponRef: &billingv1.LocalObjectReference{Name: coupon}, Code: code}}
}

func stripeCoupon(t *testing.T, id string) (*stripego.Coupon, error) {
	t.Helper()
	p := &stripego.CouponParams{}
	p.AddExpand("applies_to")
	return simClient().API.Coupons.Get(id, p)
}

// codeFor makes a promotion code unique to the test's namespace (codes are unique per Stripe account).
func codeFor(ns, code string) string {
	return code + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(ns, "ctrl-"), "-", ""))
}

// A Coupon with a custom ID, limited to a Product applied in the same batch: it waits for the Product, is created
// with every field, its name and metadata follow the spec, and it is deleted (Delete) or left (Orphan) in Stripe.
func TestCouponCreateUpdateDelete(t *testing.T) {
	ctx, ns := newNamespace(t)
	cp := newCoupon(ns, "partner")
	cp.Spec.ID = "PARTNER20-" + ns
	cp.Spec.Duration = billingv1.CouponRepeating
	cp.Spec.DurationInMonths = ptr.To[int64](3)
	cp.Spec.MaxRedemptions = ptr.To[int64](50)
	redeemBy := metav1.NewTime(time.Now().Add(48 * time.Hour).Truncate(time.Second))
	cp.Spec.RedeemBy = &redeemBy
	cp.Spec.AppliesTo = &billingv1.CouponAppliesTo{Products: []billingv1.ProductReference{
		{ProductRef: &billingv1.LocalObjectReference{Name: "plan"}}}}
	cp.Spec.Metadata = billingv1.Metadata{"team": "partners"}
	create(t, cp, newProduct(ns, "plan"))
	cp = waitReady(t, ctx, cp)
	prod := waitReady(t, ctx, newProduct(ns, "plan"))
	got, err := stripeCoupon(t, cp.Status.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Status.ID != cp.Spec.ID || got.PercentOff != 20 || got.Duration != "repeating" ||
		got.DurationInMonths != 3 || got.MaxRedemptions != 50 || got.RedeemBy != redeemBy.Unix() ||
		got.AppliesTo == nil || len(got.AppliesTo.Products) != 1 || got.AppliesTo.Products[0] != prod.Status.ID ||
		got.Metadata["team"] != "partners" || got.Metadata[billingv1.MetadataUID] != string(cp.UID) {
		t.Errorf("Stripe coupon: %+v", got)
	}
	if cp.Status.Valid == nil || !*cp.Status.Valid || len(cp.Status.ProductIDs) != 1 {
		t.Errorf("status: %+v", cp.Status)
	}

	if err := updateSpec(cp, func(c *billingv1.Coupon) {
		c.Spec.Name, c.Spec.Metadata = "Partners", billingv1.Metadata{"team": "alliances"}
	}); err != nil {
		t.Fatal(err)
	}
	cp = waitReady(t, ctx, cp)
	if got, _ := stripeCoupon(t, cp.Status.ID); got.Name != "Partners" || got.Metadata["team"] != "alliances" {
		t.Errorf("after the update: name %q metadata %v", got.Name, got.Metadata)
	}

	kept := newCoupon(ns, "kept")
	kept.Spec.DeletionPolicy = billingv1.OrphanObject
	create(t, kept)
	kept = waitReady(t, ctx, kept)
	for _, o := range []client.Object{cp, kept} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ctx, o)
	}
	if _, err := stripeCoupon(t, cp.Status.ID); err == nil {
		t.Error("deletionPolicy Delete left the coupon in Stripe")
	}
	if got, err := stripeCoupon(t, kept.Status.ID); err != nil || !got.Valid {
		t.Errorf("deletionPolicy Orphan: %v %+v", err, got)
	}
}

// Every field Stripe cannot change is refused by the API server with a message naming it; name and metadata are
// accepted.
func TestCouponImmutableFieldsRefused(t *testing.T) {
	ctx, ns := newNamespace(t)
	cp := newCoupon(ns, "fixed")
	cp.Spec.ID = "FIXED-" + ns
	cp.Spec.Duration = billingv1.CouponRepeating
	cp.Spec.DurationInMonths = ptr.To[int64](2)
	create(t, cp)
	amount := &billingv1.Coupon{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "amount"},
		Spec: billingv1.CouponSpec{AmountOff: ptr.To[int64](500), Currency: "usd"}}
	create(t, amount)
	later := metav1.NewTime(time.Now().Add(time.Hour))
	cases := []struct {
		obj    *billingv1.Coupon
		field  string
		mutate func(*billingv1.CouponSpec)
	}{
		{cp, "id", func(s *billingv1.CouponSpec) { s.ID = "OTHER" }},
		{cp, "percentOff", func(s *billingv1.CouponSpec) { v := intstr.FromString("12.5"); s.PercentOff = &v }},
		{cp, "duration", func(s *billingv1.CouponSpec) { s.Duration = billingv1.CouponForever; s.DurationInMonths = nil }},
		{cp, "durationInMonths", func(s *billingv1.CouponSpec) { s.DurationInMonths = ptr.To[int64](6) }},
		{cp, "maxRedemptions", func(s *billingv1.CouponSpec) { s.MaxRedemptions = ptr.To[int64](9) }},
		{cp, "redeemBy", func(s *billingv1.CouponSpec) { s.RedeemBy = &later }},
		{cp, "appliesTo", func(s *billingv1.CouponSpec) {
			s.AppliesTo = &billingv1.CouponAppliesTo{Products: []billingv1.ProductReference{{ProductID: "prod_x"}}}
		}},
		{amount, "amountOff", func(s *billingv1.CouponSpec) { s.AmountOff = ptr.To[int64](700) }},
		{amount, "currency", func(s *billingv1.CouponSpec) { s.Currency = "eur" }},
	}
	for _, c := range cases {
		err := updateSpec(c.obj.DeepCopy(), func(o *billingv1.Coupon) { c.mutate(&o.Spec) })
		if err == nil || !strings.Contains(err.Error(), c.field+" is immutable") {
			t.Errorf("changing %s: %v", c.field, err)
		}
	}
	if err := updateSpec(cp.DeepCopy(), func(o *billingv1.Coupon) {
		o.Spec.Name, o.Spec.Metadata = "Renamed", billingv1.Metadata{"k": "v"}
	}); err != nil {
		t.Errorf("name and metadata may change: %v", err)
	}
	bad := newCoupon(ns, "bad")
	bad.Spec.AmountOff = ptr.To[int64](100)
	if err := env.Client.Create(ctx, bad); err == nil ||
		!strings.Contains(err.Error(), "exactly one of percentOff or amountOff") {
		t.Errorf("both percentOff and amountOff: %v", err)
	}
	over := newCoupon(ns, "over")
	v := intstr.FromString("100.5")
	over.Spec.PercentOff = &v
	if err := env.Client.Create(ctx, over); err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Errorf("percentOff over 100: %v", err)
	}
}

// An existing Stripe coupon is adopted when the spec matches it, and its name and metadata are brought to the spec;
// an adopted coupon whose immutable fields differ from the spec is Stalled with the fields named.
func TestCouponAdopt(t *testing.T) {
	ctx, ns := newNamespace(t)
	sc := simClient()
	existing, err := sc.API.Coupons.New(&stripego.CouponParams{PercentOff: stripego.Float64(12.5),
		Duration: stripego.String("once"), Name: stripego.String("Old name")})
	if err != nil {
		t.Fatal(err)
	}
	adopt := newCoupon(ns, "adopted")
	v := intstr.FromString("12.5")
	adopt.Spec.PercentOff, adopt.Spec.Duration = &v, billingv1.CouponOnce
	adopt.Spec.Adopt = &billingv1.CouponAdopt{ID: existing.ID}
	create(t, adopt)
	adopt = waitReady(t, ctx, adopt)
	got, _ := stripeCoupon(t, existing.ID)
	if adopt.Status.ID != existing.ID || got.Name != adopt.Spec.Name ||
		got.Metadata[billingv1.MetadataUID] != string(adopt.UID) {
		t.Errorf("adopted coupon: status %s, Stripe %+v", adopt.Status.ID, got)
	}

	other, err := sc.API.Coupons.New(&stripego.CouponParams{PercentOff: stripego.Float64(30)})
	if err != nil {
		t.Fatal(err)
	}
	mismatch := newCoupon(ns, "mismatch")
	mismatch.Spec.Adopt = &billingv1.CouponAdopt{ID: other.ID}
	create(t, mismatch)
	cond := waitReason(t, ctx, mismatch, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, "percentOff (spec 20, Stripe 30)") ||
		!strings.Contains(cond.Message, "duration (spec forever, Stripe once)") {
		t.Errorf("mismatched adoption: %s", cond.Message)
	}
}

// A coupon deleted in Stripe is Stalled DeletedInStripe from its event alone, and a subscription discounted by it
// keeps its discount (Stripe's rule).
func TestCouponDeletedInStripe(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	sub := newSubscription(ns, "discounted", "payer", "monthly")
	sub.Spec.Discount = &billingv1.SubscriptionDiscount{CouponRef: &billingv1.LocalObjectReference{Name: "gone"}}
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 1000), newCustomer(ns, "payer"), newCoupon(ns, "gone"),
		sub)
	cp := waitReady(t, ctx, newCoupon(ns, "gone"))
	sub = waitReady(t, ctx, sub)
	if _, err := simClient().API.Coupons.Del(cp.Status.ID, nil); err != nil {
		t.Fatal(err)
	}
	cond := waitReason(t, ctx, cp, billingv1.ReasonDeletedInStripe)
	if !strings.Contains(cond.Message, "was deleted in Stripe") {
		t.Errorf("message: %s", cond.Message)
	}
	if got := stripeSubscription(t, sub.Status.ID); got.Discount == nil || got.Discount.Coupon.ID != cp.Status.ID {
		t.Errorf("the subscription lost its discount: %+v", got.Discount)
	}
	sub = waitReady(t, ctx, sub)
	if sub.Status.Discount == nil || sub.Status.Discount.CouponID != cp.Status.ID {
		t.Errorf("status.discount: %+v", sub.Status.Discount)
	}
	// The coupon's deletion and the subscription's discount event were folded into their own objects (the coupon's
	// creation is not delivered: the operator does not register for it).
	waitEventProcessed(t, "coupon.deleted", cp.Status.ID, "Coupon", cp.Name)
	waitEventProcessed(t, "customer.discount.created", sub.Status.ID, "Subscription", sub.Name)
}

// waitEventProcessed waits until the StripeEvent of type typ about the Stripe object id (an invoice or discount by
// its subscription) is Processed and routed to the object kind/name.
func waitEventProcessed(t *testing.T, typ, id, kind, name string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		l := &billingv1.StripeEventList{}
		if err := env.Client.List(t.Context(), l, client.InNamespace(operatorNamespace)); err != nil {
			return err
		}
		for _, e := range l.Items {
			if e.Spec.Type != typ || !strings.Contains(e.Spec.Payload, `"`+id+`"`) {
				continue
			}
			if tgt := e.Status.Target; e.Status.Phase != billingv1.EventProcessed || tgt == nil || tgt.Kind != kind ||
				tgt.Name != name {
				return fmt.Errorf("%s %s: %s %q, target %+v", typ, e.Spec.EventID, e.Status.Phase, e.Status.Message,
					tgt)
			}
			return nil
		}
		return fmt.Errorf("no %s event about %s stored", typ, id)
	})
}

// A PromotionCode waits for its Coupon, is created with its restrictions, follows active and metadata, refuses a
// change of its code, is Stalled with Stripe's message when its code is already active in the account, and is
// deactivated (Deactivate) or left (Orphan) when deleted.
func TestPromotionCodeLifecycle(t *testing.T) {
	ctx, ns := newNamespace(t)
	code := codeFor(ns, "LAUNCH")
	pc := newPromotionCode(ns, "launch", "base", code)
	pc.Spec.MaxRedemptions = ptr.To[int64](100)
	expires := metav1.NewTime(time.Now().Add(24 * time.Hour).Truncate(time.Second))
	pc.Spec.ExpiresAt = &expires
	pc.Spec.Restrictions = &billingv1.PromotionCodeRestrictions{FirstTimeTransaction: true,
		MinimumAmount: ptr.To[int64](1000), MinimumAmountCurrency: "usd"}
	create(t, pc) // before its coupon: it waits
	waitReason(t, ctx, pc, billingv1.ReasonDependencyNotReady)
	create(t, newCoupon(ns, "base"))
	pc = waitReady(t, ctx, pc)
	cp := waitReady(t, ctx, newCoupon(ns, "base"))
	got, err := simClient().API.PromotionCodes.Get(pc.Status.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != code || got.Coupon.ID != cp.Status.ID || !got.Active || got.MaxRedemptions != 100 ||
		got.ExpiresAt != expires.Unix() || !got.Restrictions.FirstTimeTransaction ||
		got.Restrictions.MinimumAmount != 1000 || pc.Status.CouponID != cp.Status.ID {
		t.Errorf("Stripe promotion code: %+v, status %+v", got, pc.Status)
	}

	dup := newPromotionCode(ns, "dup", "base", strings.ToLower(code))
	create(t, dup)
	cond := waitReason(t, ctx, dup, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, "An active promotion code with `code: "+strings.ToLower(code)+
		"` already exists.") {
		t.Errorf("duplicate code: %s", cond.Message)
	}

	if err := updateSpec(pc, func(p *billingv1.PromotionCode) { p.Spec.Code = code + "X" }); err == nil ||
		!strings.Contains(err.Error(), "code is immutable") {
		t.Errorf("changing the code: %v", err)
	}
	if err := updateSpec(pc, func(p *billingv1.PromotionCode) { p.Spec.Active = ptr.To(false) }); err != nil {
		t.Fatal(err)
	}
	pc = waitReady(t, ctx, pc)
	if got, _ := simClient().API.PromotionCodes.Get(pc.Status.ID, nil); got.Active || *pc.Status.Active {
		t.Errorf("active=false: Stripe %v, status %v", got.Active, *pc.Status.Active)
	}
	// The code is free again: the duplicate becomes Ready once retried.
	dup = waitReadyAfterRequest(t, dup)
	if err := env.Client.Delete(ctx, dup); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, dup)
	if got, _ := simClient().API.PromotionCodes.Get(dup.Status.ID, nil); got.Active {
		t.Error("deletionPolicy Deactivate left the code active")
	}
	orphan := newPromotionCode(ns, "orphan", "base", codeFor(ns, "ORPHAN"))
	orphan.Spec.DeletionPolicy = billingv1.PromotionCodeOrphan
	create(t, orphan)
	orphan = waitReady(t, ctx, orphan)
	if err := env.Client.Delete(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, orphan)
	if got, _ := simClient().API.PromotionCodes.Get(orphan.Status.ID, nil); !got.Active {
		t.Error("deletionPolicy Orphan deactivated the code")
	}
}

// updateSpec reads obj, changes it and updates it, again on a conflict (the operator writes the object too); obj
// holds what was sent.
func updateSpec[T billingv1.StripeObject](obj T, mutate func(T)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return env.Client.Update(context.Background(), obj)
	})
}

// waitReadyAfterRequest asks for a reconcile (the annotation) and waits until it was handled and obj is Ready.
func waitReadyAfterRequest[T billingv1.StripeObject](t *testing.T, obj T) T {
	t.Helper()
	ctx := t.Context()
	requested := time.Now().Format(time.RFC3339Nano)
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[billingv1.AnnotationReconcileRequestedAt] = requested
		obj.SetAnnotations(ann)
		return env.Client.Update(ctx, obj)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if got := obj.GetStripeStatus().LastHandledReconcileAt; got != requested {
			return fmt.Errorf("the request %s is not handled yet (%q)", requested, got)
		}
		return nil
	})
	return waitReady(t, ctx, obj)
}

// An existing Stripe promotion code is adopted; its immutable fields are checked against the spec.
func TestPromotionCodeAdopt(t *testing.T) {
	ctx, ns := newNamespace(t)
	cp := waitReady(t, ctx, func() *billingv1.Coupon { c := newCoupon(ns, "base"); create(t, c); return c }())
	code := codeFor(ns, "TAKEN")
	existing, err := simClient().API.PromotionCodes.New(&stripego.PromotionCodeParams{
		Coupon: stripego.String(cp.Status.ID), Code: stripego.String(code)})
	if err != nil {
		t.Fatal(err)
	}
	pc := newPromotionCode(ns, "adopted", "base", code)
	pc.Spec.Adopt = &billingv1.PromotionCodeAdopt{ID: existing.ID}
	pc.Spec.Metadata = billingv1.Metadata{"campaign": "launch"}
	create(t, pc)
	pc = waitReady(t, ctx, pc)
	got, _ := simClient().API.PromotionCodes.Get(existing.ID, nil)
	if pc.Status.ID != existing.ID || got.Metadata["campaign"] != "launch" ||
		got.Metadata[billingv1.MetadataUID] != string(pc.UID) {
		t.Errorf("adopted: status %s, Stripe metadata %v", pc.Status.ID, got.Metadata)
	}
	wrong := newPromotionCode(ns, "wrong", "base", "SOMETHINGELSE")
	wrong.Spec.Adopt = &billingv1.PromotionCodeAdopt{ID: existing.ID}
	create(t, wrong)
	cond := waitReason(t, ctx, wrong, billingv1.ReasonInvalidRequest)
	if !strings.Contains(cond.Message, fmt.Sprintf("code (spec %q, Stripe %q)", "SOMETHINGELSE", code)) {
		t.Errorf("mismatched adoption: %s", cond.Message)
	}
}
