package crd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func validCustomer(ns, name string) *billingv1.Customer {
	return &billingv1.Customer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       billingv1.CustomerSpec{Email: "billing@acme.example", Name: "Acme"},
	}
}

func validProduct(ns, name string) *billingv1.Product {
	return &billingv1.Product{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       billingv1.ProductSpec{Name: "Basic plan"},
	}
}

func validPrice(ns, name string) *billingv1.Price {
	return &billingv1.Price{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.PriceSpec{
			ProductRef: &billingv1.LocalObjectReference{Name: "basic"},
			Currency:   "usd",
			UnitAmount: 1500,
		},
	}
}

func validCoupon(ns, name string) *billingv1.Coupon {
	pct := intstr.FromInt32(20)
	return &billingv1.Coupon{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       billingv1.CouponSpec{PercentOff: &pct},
	}
}

func validPromotionCode(ns, name string) *billingv1.PromotionCode {
	return &billingv1.PromotionCode{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.PromotionCodeSpec{CouponRef: &billingv1.LocalObjectReference{Name: "partner"},
			Code: "LAUNCH"},
	}
}

func validSubscription(ns, name string) *billingv1.Subscription {
	return &billingv1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.SubscriptionSpec{
			CustomerRef: &billingv1.LocalObjectReference{Name: "acme"},
			Items: []billingv1.SubscriptionItem{
				{PriceRef: &billingv1.LocalObjectReference{Name: "basic-monthly"}, Quantity: ptr.To[int64](1)},
			},
		},
	}
}

func validEvent(ns, name string) *billingv1.StripeEvent {
	return &billingv1.StripeEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.StripeEventSpec{
			EventID: "evt_1", Type: "customer.updated", Created: 1700000000, ObjectID: "cus_1", ObjectType: "customer",
		},
	}
}

// validLedger is a StripeEventLedger holding n events.
func validLedger(ns, name string, n int) *billingv1.StripeEventLedger {
	l := &billingv1.StripeEventLedger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Window: metav1.NewTime(time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC)), Events: map[string]string{}}
	for i := range n {
		l.Events[fmt.Sprintf("evt_%d", i)] = "Subscription/" + ns + "/s"
	}
	return l
}

func manyMetadata(n int) billingv1.Metadata {
	m := billingv1.Metadata{}
	for i := range n {
		m[fmt.Sprintf("key%d", i)] = "v"
	}
	return m
}

// invalidCase is an object the API server must refuse. A case with update set is first created valid and then
// changed by update; otherwise create is changed before the object is created.
type invalidCase struct {
	name   string
	object func(ns string) client.Object
	update func(client.Object)
	want   string
}

func cus(mut func(*billingv1.Customer)) func(string) client.Object {
	return func(ns string) client.Object { c := validCustomer(ns, "bad"); mut(c); return c }
}

func prod(mut func(*billingv1.Product)) func(string) client.Object {
	return func(ns string) client.Object { p := validProduct(ns, "bad"); mut(p); return p }
}

func price(mut func(*billingv1.Price)) func(string) client.Object {
	return func(ns string) client.Object { p := validPrice(ns, "bad"); mut(p); return p }
}

func sub(mut func(*billingv1.Subscription)) func(string) client.Object {
	return func(ns string) client.Object { s := validSubscription(ns, "bad"); mut(s); return s }
}

func coupon(mut func(*billingv1.Coupon)) func(string) client.Object {
	return func(ns string) client.Object { c := validCoupon(ns, "bad"); mut(c); return c }
}

func promo(mut func(*billingv1.PromotionCode)) func(string) client.Object {
	return func(ns string) client.Object { p := validPromotionCode(ns, "bad"); mut(p); return p }
}

func noChange[T any](T) {}

var invalidCases = []invalidCase{
	// Customer.
	{name: "customer email without @", object: cus(func(c *billingv1.Customer) { c.Spec.Email = "not-an-email" }),
		want: "spec.email"},
	{name: "customer unknown deletion policy",
		object: cus(func(c *billingv1.Customer) { c.Spec.DeletionPolicy = "Archive" }),
		want:   `spec.deletionPolicy: Unsupported value: "Archive": supported values: "Orphan", "Delete"`},
	{name: "customer lowercase country", object: cus(func(c *billingv1.Customer) {
		c.Spec.Address = &billingv1.Address{Country: "us"}
	}), want: "spec.address.country"},
	{name: "customer payment method not pm_",
		object: cus(func(c *billingv1.Customer) { c.Spec.DefaultPaymentMethod = "card_123" }),
		want:   "spec.defaultPaymentMethod"},
	{name: "customer adopt with a product ID",
		object: cus(func(c *billingv1.Customer) { c.Spec.Adopt = &billingv1.CustomerAdopt{ID: "prod_123"} }),
		want:   "spec.adopt.id"},
	{name: "customer test clock added after creation", object: cus(noChange[*billingv1.Customer]),
		update: func(o client.Object) { o.(*billingv1.Customer).Spec.TestClock = "clock_123" },
		want:   "testClock is immutable"},
	// Metadata, shared by every kind.
	{name: "metadata with 46 keys",
		object: cus(func(c *billingv1.Customer) { c.Spec.Metadata = manyMetadata(46) }),
		want:   "spec.metadata: Too many: 46: must have at most 45 items"},
	{name: "metadata key over 40 characters", object: prod(func(p *billingv1.Product) {
		p.Spec.Metadata = billingv1.Metadata{strings.Repeat("k", 41): "v"}
	}), want: "metadata keys must be 1 to 40 characters long"},
	{name: "metadata key with brackets", object: price(func(p *billingv1.Price) {
		p.Spec.Metadata = billingv1.Metadata{"team[0]": "v"}
	}), want: "metadata keys must not contain '[' or ']'"},
	{name: "metadata value over 500 characters", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Metadata = billingv1.Metadata{"k": strings.Repeat("v", 501)}
	}), want: "metadata values must be at most 500 characters long"},
	{name: "metadata key in the operator's k8s_ namespace", object: cus(func(c *billingv1.Customer) {
		c.Spec.Metadata = billingv1.Metadata{"k8s_uid": "spoofed"}
	}), want: "metadata keys starting with 'k8s_' are reserved for the operator"},
	// Product.
	{name: "product without a name", object: prod(func(p *billingv1.Product) { p.Spec.Name = "" }),
		want: "spec.name"},
	{name: "product statement descriptor with a quote",
		object: prod(func(p *billingv1.Product) { p.Spec.StatementDescriptor = `ACME "PRO"` }),
		want:   "statementDescriptor must contain at least one letter and none of"},
	{name: "product statement descriptor too long",
		object: prod(func(p *billingv1.Product) { p.Spec.StatementDescriptor = strings.Repeat("A", 23) }),
		want:   "spec.statementDescriptor: Too long"},
	{name: "product delete policy", object: prod(func(p *billingv1.Product) { p.Spec.DeletionPolicy = "Delete" }),
		want: `spec.deletionPolicy: Unsupported value: "Delete"`},
	{name: "product unknown management policy",
		object: prod(func(p *billingv1.Product) { p.Spec.ManagementPolicy = "DryRun" }),
		want:   `spec.managementPolicy: Unsupported value: "DryRun": supported values: "Manage", "Observe"`},
	// Price.
	{name: "price with both productRef and productID",
		object: price(func(p *billingv1.Price) { p.Spec.ProductID = "prod_123" }),
		want:   "exactly one of productRef or productID is required"},
	{name: "price with neither productRef nor productID",
		object: price(func(p *billingv1.Price) { p.Spec.ProductRef = nil }),
		want:   "exactly one of productRef or productID is required"},
	{name: "price uppercase currency", object: price(func(p *billingv1.Price) { p.Spec.Currency = "USD" }),
		want: "currency must be a lowercase three-letter ISO code such as usd"},
	{name: "price negative amount", object: price(func(p *billingv1.Price) { p.Spec.UnitAmount = -1 }),
		want: "unitAmount must be 0 or more"},
	{name: "price unknown interval", object: price(func(p *billingv1.Price) {
		p.Spec.Recurring = &billingv1.Recurring{Interval: "fortnight"}
	}), want: `spec.recurring.interval: Unsupported value: "fortnight"`},
	{name: "price interval longer than a year", object: price(func(p *billingv1.Price) {
		p.Spec.Recurring = &billingv1.Recurring{Interval: billingv1.IntervalMonth, IntervalCount: 13}
	}), want: "recurring.intervalCount must make at most one year between bills"},
	{name: "price adopt by both id and lookup key", object: price(func(p *billingv1.Price) {
		p.Spec.Adopt = &billingv1.PriceAdopt{ID: "price_1", LookupKey: "pro"}
	}), want: "adopt needs exactly one of id or lookupKey"},
	{name: "price tax behaviour changed after it was set", object: price(func(p *billingv1.Price) {
		p.Spec.TaxBehavior = billingv1.TaxExclusive
	}), update: func(o client.Object) { o.(*billingv1.Price).Spec.TaxBehavior = billingv1.TaxInclusive },
		want: "taxBehavior cannot change once it is inclusive or exclusive"},
	// Subscription.
	{name: "subscription with both customerRef and customerID",
		object: sub(func(s *billingv1.Subscription) { s.Spec.CustomerID = "cus_123" }),
		want:   "exactly one of customerRef or customerID is required"},
	{name: "subscription without items", object: sub(func(s *billingv1.Subscription) { s.Spec.Items = nil }),
		want: "spec.items: Required value"},
	{name: "subscription with 21 items", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Items = nil
		for i := range 21 {
			s.Spec.Items = append(s.Spec.Items, billingv1.SubscriptionItem{PriceID: fmt.Sprintf("price_%d", i)})
		}
	}), want: "spec.items: Too many: 21: must have at most 20 items"},
	{name: "subscription item with both priceRef and priceID", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Items[0].PriceID = "price_123"
	}), want: "each item needs exactly one of priceRef or priceID"},
	{name: "subscription with the same price twice", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Items = append(s.Spec.Items, s.Spec.Items[0])
	}), want: "each price may appear only once in items"},
	{name: "subscription daysUntilDue while charging automatically", object: sub(func(s *billingv1.Subscription) {
		s.Spec.DaysUntilDue = ptr.To[int64](30)
	}), want: "daysUntilDue is only valid with collectionMethod send_invoice"},
	{name: "subscription negative quantity", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Items[0].Quantity = ptr.To[int64](-1)
	}), want: "spec.items[0].quantity: Invalid value: -1: spec.items[0].quantity in body should be greater than or equal to 0"},
	{name: "subscription unknown deletion policy", object: sub(func(s *billingv1.Subscription) {
		s.Spec.DeletionPolicy = "Delete"
	}), want: `spec.deletionPolicy: Unsupported value: "Delete"`},
	{name: "subscription customer changed", object: sub(noChange[*billingv1.Subscription]),
		update: func(o client.Object) { o.(*billingv1.Subscription).Spec.CustomerRef.Name = "globex" },
		want:   "the subscription's customer is immutable"},
	{name: "subscription customer switched from ref to ID", object: sub(noChange[*billingv1.Subscription]),
		update: func(o client.Object) {
			s := o.(*billingv1.Subscription)
			s.Spec.CustomerRef, s.Spec.CustomerID = nil, "cus_123"
		}, want: "the subscription's customer is immutable"},
	{name: "subscription with two discounts", object: sub(func(s *billingv1.Subscription) {
		s.Spec.Discount = &billingv1.SubscriptionDiscount{CouponID: "PARTNER20", PromotionCodeID: "promo_123"}
	}), want: "discount needs exactly one of couponRef, couponID, promotionCodeRef or promotionCodeID"},
	// Coupon.
	{name: "coupon with percentOff and amountOff", object: coupon(func(c *billingv1.Coupon) {
		c.Spec.AmountOff, c.Spec.Currency = ptr.To[int64](500), "usd"
	}), want: "exactly one of percentOff or amountOff is required"},
	{name: "coupon amountOff without currency", object: coupon(func(c *billingv1.Coupon) {
		c.Spec.PercentOff, c.Spec.AmountOff = nil, ptr.To[int64](500)
	}), want: "currency is required with amountOff, and only with it"},
	{name: "coupon percentOff with three decimals", object: coupon(func(c *billingv1.Coupon) {
		v := intstr.FromString("12.125")
		c.Spec.PercentOff = &v
	}), want: "percentOff must be above 0 and at most 100, with at most two decimals"},
	{name: "coupon repeating without months", object: coupon(func(c *billingv1.Coupon) {
		c.Spec.Duration = billingv1.CouponRepeating
	}), want: "durationInMonths is required with duration repeating, and only with it"},
	{name: "coupon percentOff changed", object: coupon(noChange[*billingv1.Coupon]),
		update: func(o client.Object) { v := intstr.FromInt32(30); o.(*billingv1.Coupon).Spec.PercentOff = &v },
		want:   "percentOff is immutable"},
	// PromotionCode.
	{name: "promotion code with punctuation", object: promo(func(p *billingv1.PromotionCode) {
		p.Spec.Code = "LAUNCH-2026"
	}), want: "spec.code"},
	{name: "promotion code with couponRef and couponID", object: promo(func(p *billingv1.PromotionCode) {
		p.Spec.CouponID = "PARTNER20"
	}), want: "exactly one of couponRef or couponID is required"},
	{name: "promotion code code changed", object: promo(noChange[*billingv1.PromotionCode]),
		update: func(o client.Object) { o.(*billingv1.PromotionCode).Spec.Code = "OTHER" },
		want:   "code is immutable"},
	// StripeEvent.
	{name: "stripe event spec changed", object: func(ns string) client.Object { return validEvent(ns, "bad") },
		update: func(o client.Object) { o.(*billingv1.StripeEvent).Spec.Type = "customer.deleted" },
		want:   "a StripeEvent's spec is immutable"},
	{name: "stripe event without an ID", object: func(ns string) client.Object {
		e := validEvent(ns, "bad")
		e.Spec.EventID = ""
		return e
	}, want: "spec.eventID"},
	// StripeEventLedger.
	{name: "stripe event ledger over its size", object: func(ns string) client.Object {
		return validLedger(ns, "bad", billingv1.MaxLedgerEntries+1)
	}, want: "events: Too many: 501: must have at most 500 items"},
}

func TestInvalidObjectsAreRefused(t *testing.T) {
	if len(invalidCases) < 20 {
		t.Fatalf("only %d invalid cases", len(invalidCases))
	}
	for _, c := range invalidCases {
		t.Run(c.name, func(t *testing.T) {
			ctx, ns := newNamespace(t)
			obj := c.object(ns)
			err := env.Client.Create(ctx, obj)
			if c.update != nil {
				if err != nil {
					t.Fatalf("the valid starting object was refused: %v", err)
				}
				c.update(obj)
				err = env.Client.Update(ctx, obj)
			}
			if err == nil {
				t.Fatalf("accepted; want a refusal containing %q", c.want)
			}
			if !isInvalid(err) {
				t.Fatalf("refused with %v; want an Invalid error", err)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal %q\ndoes not contain %q", err.Error(), c.want)
			}
		})
	}
}

// The valid objects the cases start from must themselves be accepted, or every case above passes for the wrong
// reason.
func TestValidBaseObjectsAreAccepted(t *testing.T) {
	ctx, ns := newNamespace(t)
	for _, o := range []client.Object{
		validCustomer(ns, "base"), validProduct(ns, "base"), validPrice(ns, "base"), validSubscription(ns, "base"),
		validEvent(ns, "base"), validLedger(ns, "base", billingv1.MaxLedgerEntries), validCoupon(ns, "base"),
		validPromotionCode(ns, "base"),
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Errorf("%T refused: %v", o, err)
		}
	}
}
