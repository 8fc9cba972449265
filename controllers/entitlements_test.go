package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

func newFeature(ns, name, lookupKey string) *billingv1.EntitlementFeature {
	return &billingv1.EntitlementFeature{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: billingv1.EntitlementFeatureSpec{Name: "Feature " + name, LookupKey: lookupKey,
			Metadata: billingv1.Metadata{"team": "platform"}}}
}

func stripeFeature(t *testing.T, id string) *stripego.EntitlementsFeature {
	t.Helper()
	f, err := simClient().API.EntitlementsFeatures.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// productFeatureKeys are the lookup keys of the features attached to a Stripe product, sorted.
func productFeatureKeys(t *testing.T, product string) []string {
	t.Helper()
	c := simClient()
	l, err := stripe.Call(t.Context(), c, stripe.Op{Resource: resProductFeature, Operation: stripe.OpList},
		&stripego.ListParams{}, func() (*stripe.ProductFeatureList, error) {
			return c.ListProductFeatures(product, &stripego.ListParams{Limit: stripego.Int64(100)})
		})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(l.Data))
	for _, pf := range l.Data {
		keys = append(keys, pf.EntitlementFeature.LookupKey)
	}
	slices.Sort(keys)
	return keys
}

// uniqueKey is a lookup key unique in the simulator's account (lookup keys are unique per account).
func uniqueKey(ns, name string) string { return ns + "-" + name }

// TestEntitlementFeatureLifecycle: a feature is created with its lookup key, name and metadata; a name change is
// made in place; a lookup key change is refused by the API server with a clear message; deleting it archives it.
// A create whose answer is lost (committed in Stripe, then the connection dropped) is recovered, not repeated.
// An existing feature is adopted and, deleted under Orphan, stays active; one whose lookup key differs from the
// spec stalls.
func TestEntitlementFeatureLifecycle(t *testing.T) {
	ctx, ns := newNamespace(t)
	faults := addFaults(t, stripesim.Fault{Kind: stripesim.FaultCommitThenFail, Method: "POST",
		Path: "/v1/entitlements/features", Count: 1})
	f := newFeature(ns, "sso", uniqueKey(ns, "sso"))
	create(t, f)
	f = waitReady(t, ctx, f)
	if firedTimes(faults) != 1 {
		t.Errorf("the commit-then-fail fault fired %d times", firedTimes(faults))
	}
	lp := &stripego.EntitlementsFeatureListParams{}
	lp.Filters.AddFilter("lookup_key", "", f.Spec.LookupKey)
	it := simClient().API.EntitlementsFeatures.List(lp)
	var ids []string
	for it.Next() {
		ids = append(ids, it.EntitlementsFeature().ID)
	}
	if it.Err() != nil || !slices.Equal(ids, []string{f.Status.ID}) {
		t.Fatalf("Stripe features of the lookup key: %v %v, want only %s", ids, it.Err(), f.Status.ID)
	}
	got := stripeFeature(t, f.Status.ID)
	if got.LookupKey != f.Spec.LookupKey || got.Name != "Feature sso" || !got.Active ||
		got.Metadata["team"] != "platform" || got.Metadata[billingv1.MetadataUID] != string(f.UID) {
		t.Fatalf("Stripe feature: %+v", got)
	}
	if err := updateSpec(f, func(o *billingv1.EntitlementFeature) { o.Spec.Name = "Single sign-on" }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := stripeFeature(t, f.Status.ID).Name; n != "Single sign-on" {
			return fmt.Errorf("Stripe name %q", n)
		}
		return nil
	})
	err := updateSpec(f, func(o *billingv1.EntitlementFeature) { o.Spec.LookupKey = "other" })
	if err == nil || !strings.Contains(err.Error(), "lookupKey is immutable") {
		t.Fatalf("a lookup key change: %v", err)
	}
	if err := env.Client.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, f)
	if stripeFeature(t, f.Status.ID).Active {
		t.Error("a deleted feature (Archive) is still active in Stripe")
	}

	existing, err := simClient().API.EntitlementsFeatures.New(&stripego.EntitlementsFeatureParams{
		Name: stripego.String("Audit"), LookupKey: stripego.String(uniqueKey(ns, "audit"))})
	if err != nil {
		t.Fatal(err)
	}
	adopted := newFeature(ns, "audit", uniqueKey(ns, "audit"))
	adopted.Spec.Adopt = &billingv1.EntitlementFeatureAdopt{ID: existing.ID}
	adopted.Spec.DeletionPolicy = billingv1.Orphan
	create(t, adopted)
	adopted = waitReady(t, ctx, adopted)
	if got := stripeFeature(t, existing.ID); adopted.Status.ID != existing.ID || got.Name != "Feature audit" ||
		got.Metadata[billingv1.MetadataUID] != string(adopted.UID) {
		t.Fatalf("adopted: %s %+v", adopted.Status.ID, got)
	}
	if err := env.Client.Delete(ctx, adopted); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, adopted)
	if !stripeFeature(t, existing.ID).Active {
		t.Error("an orphaned feature was archived")
	}

	mismatch := newFeature(ns, "mismatch", uniqueKey(ns, "not-the-key"))
	mismatch.Spec.Adopt = &billingv1.EntitlementFeatureAdopt{ID: existing.ID}
	create(t, mismatch)
	c := waitReason(t, ctx, mismatch, billingv1.ReasonInvalidRequest)
	if !strings.Contains(c.Message, "lookup key") {
		t.Errorf("adopting a feature of another lookup key: %s", c.Message)
	}
}

// TestProductFeatures: a feature named both by reference and by ID is refused by the API server; a Product's
// features, named by reference or by Stripe ID, are attached in Stripe; the
// Product waits for a referenced feature's Stripe ID; a feature dropped from the spec, or attached in Stripe by
// someone else, is detached; a Product without spec.features leaves Stripe's product features alone.
func TestProductFeatures(t *testing.T) {
	ctx, ns := newNamespace(t)
	both := newProduct(ns, "both")
	both.Spec.Features = []billingv1.ProductFeatureReference{{FeatureRef: &billingv1.LocalObjectReference{Name: "x"},
		FeatureID: "feat_x"}}
	if err := env.Client.Create(ctx, both); err == nil ||
		!strings.Contains(err.Error(), "exactly one of featureRef and featureID must be set") {
		t.Errorf("a feature named both ways: %v", err)
	}
	byID, err := simClient().API.EntitlementsFeatures.New(&stripego.EntitlementsFeatureParams{
		Name: stripego.String("Exports"), LookupKey: stripego.String(uniqueKey(ns, "exports"))})
	if err != nil {
		t.Fatal(err)
	}
	prod := newProduct(ns, "plan")
	prod.Spec.Features = []billingv1.ProductFeatureReference{
		{FeatureRef: &billingv1.LocalObjectReference{Name: "sso"}}, {FeatureID: byID.ID}}
	create(t, prod)
	c := waitReason(t, ctx, prod, billingv1.ReasonDependencyNotReady)
	if !strings.Contains(c.Message, "sso") {
		t.Errorf("waiting for the feature: %s", c.Message)
	}
	create(t, newFeature(ns, "sso", uniqueKey(ns, "sso")))
	want := []string{uniqueKey(ns, "exports"), uniqueKey(ns, "sso")}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(prod), prod); err != nil {
			return err
		}
		if prod.Status.ID == "" || len(prod.Status.Features) != 2 {
			return fmt.Errorf("status.features %+v", prod.Status.Features)
		}
		if got := productFeatureKeys(t, prod.Status.ID); !slices.Equal(got, want) {
			return fmt.Errorf("Stripe product features %v, want %v", got, want)
		}
		return nil
	})
	prod = waitReady(t, ctx, prod)

	// Someone attaches a feature in Stripe; the next read (asked for here) detaches it.
	stray, err := simClient().API.EntitlementsFeatures.New(&stripego.EntitlementsFeatureParams{
		Name: stripego.String("Stray"), LookupKey: stripego.String(uniqueKey(ns, "stray"))})
	if err != nil {
		t.Fatal(err)
	}
	sc := simClient()
	if _, err := sc.AttachProductFeature(prod.Status.ID,
		&stripe.ProductFeatureParams{EntitlementFeature: stripego.String(stray.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := updateSpec(prod, func(p *billingv1.Product) {
		p.Spec.Features = p.Spec.Features[:1]
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := productFeatureKeys(t, prod.Status.ID); !slices.Equal(got, want[1:]) {
			return fmt.Errorf("Stripe product features %v, want %v", got, want[1:])
		}
		return nil
	})

	// Without spec.features, Stripe's product features are left alone.
	free := newProduct(ns, "free")
	create(t, free)
	free = waitReady(t, ctx, free)
	if _, err := sc.AttachProductFeature(free.Status.ID,
		&stripe.ProductFeatureParams{EntitlementFeature: stripego.String(byID.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := updateSpec(free, func(p *billingv1.Product) { p.Spec.Description = "Free tier" }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(free), free); err != nil {
			return err
		}
		if free.Status.ObservedGeneration != free.Generation {
			return fmt.Errorf("generation %d not observed yet", free.Generation)
		}
		return nil
	})
	if got := productFeatureKeys(t, free.Status.ID); !slices.Equal(got, want[:1]) {
		t.Errorf("a Product without spec.features changed Stripe's product features: %v", got)
	}
}

// waitEntitlements waits for the Customer's status.entitlements to be want, confirmed.
func waitEntitlements(t *testing.T, ctx context.Context, cus *billingv1.Customer, want ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
			return err
		}
		if cus.Status.EntitlementsConfirmedAt == nil || !slices.Equal(cus.Status.Entitlements, want) {
			return fmt.Errorf("entitlements %v (confirmed %v), want %v", cus.Status.Entitlements,
				cus.Status.EntitlementsConfirmedAt, want)
		}
		return nil
	})
}

// entitlementReads counts the reads of a customer's active entitlements (other tests' leftover events may read
// their own customers').
func entitlementReads(customer string) int64 {
	var n int64
	for _, r := range sim.Recorded() {
		if r.Method == http.MethodGet && r.Path == "/v1/entitlements/active_entitlements" &&
			strings.Contains("&"+r.Params+"&", "&customer="+customer+"&") {
			n++
		}
	}
	return n
}

// entitlementPlan creates a feature, a Product granting it, its Price, a Customer and its Subscription, and waits
// for them.
func entitlementPlan(t *testing.T, ctx context.Context, ns string) (*billingv1.Customer, *billingv1.Subscription,
	string) {
	t.Helper()
	key := uniqueKey(ns, "analytics")
	prod := newProduct(ns, "plan")
	prod.Spec.Features = []billingv1.ProductFeatureReference{
		{FeatureRef: &billingv1.LocalObjectReference{Name: "analytics"}}}
	cus := newCustomer(ns, "acme")
	create(t, newFeature(ns, "analytics", key), prod, newPrice(ns, "monthly", 900), cus)
	waitReady(t, ctx, prod)
	cus = waitReady(t, ctx, cus)
	sub := newSubscription(ns, "acme-plan", "acme", "monthly")
	create(t, sub)
	return cus, waitReady(t, ctx, sub), key
}

// unrelatedChanges makes changes that send events about the customer and the product but change no entitlement:
// none of them may cost a read of active entitlements.
func unrelatedChanges(t *testing.T, ctx context.Context, cus *billingv1.Customer, sub *billingv1.Subscription) {
	t.Helper()
	if err := updateSpec(cus, func(c *billingv1.Customer) { c.Spec.Name = "Acme Corp" }); err != nil {
		t.Fatal(err)
	}
	if err := updateSpec(sub, func(s *billingv1.Subscription) {
		s.Spec.Metadata = billingv1.Metadata{"note": "renamed"}
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := stripeCustomer(t, cus.Status.ID).Name; got != "Acme Corp" {
			return fmt.Errorf("Stripe customer name %q", got)
		}
		if got := stripeSubscription(t, sub.Status.ID).Metadata["note"]; got != "renamed" {
			return fmt.Errorf("Stripe subscription note %q", got)
		}
		return nil
	})
	time.Sleep(time.Second) // their events are delivered and folded
	waitReady(t, ctx, cus)
}

// TestWebhookCustomerEntitlements: a Customer's status.entitlements lists the lookup keys of the features its
// subscription's product grants once the subscription starts, and is emptied when the subscription is canceled,
// driven only by Stripe's summary events, delivered as signed webhooks over HTTP (shuffled and duplicated). The
// payload is the truth: active entitlements are read only when two summaries of one second disagree, never for
// an unrelated event.
func TestWebhookCustomerEntitlements(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	cus, sub, key := entitlementPlan(t, ctx, ns)
	waitEntitlements(t, ctx, cus, key)
	if cus.Status.EntitlementsConfirmedAt.Unix() < sub.CreationTimestamp.Unix()-1 {
		t.Errorf("confirmed at %v, before the subscription began", cus.Status.EntitlementsConfirmedAt)
	}
	afterStart := entitlementReads(cus.Status.ID)
	if afterStart > 1 {
		t.Errorf("%d reads of active entitlements for one summary", afterStart)
	}

	unrelatedChanges(t, ctx, cus, sub)
	if n := entitlementReads(cus.Status.ID) - afterStart; n != 0 {
		t.Errorf("%d reads of active entitlements for events that change no entitlement", n)
	}
	waitEntitlements(t, ctx, cus, key)

	if err := env.Client.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, sub)
	waitEntitlements(t, ctx, cus)
	if len(cus.Status.Entitlements) != 0 {
		t.Errorf("entitlements after the cancellation: %v", cus.Status.Entitlements)
	}
}

// subscriptionChanges counts the events Stripe sent of the subscription (and its invoices) that can change its
// customer's entitlements (entitlementChange), and the other events of the subscription.
func subscriptionChanges(t *testing.T, id string) (changes, others int64) {
	t.Helper()
	for _, typ := range []string{"customer.subscription.*", "invoice.paid"} {
		it := simClient().API.Events.List(&stripego.EventListParams{Type: stripego.String(typ)})
		for it.Next() {
			ev := it.Event()
			if ev.Data.Object["id"] != id && ev.Data.Object["subscription"] != id {
				continue
			}
			var pl payload
			pl.Data.Object = ev.Data.Raw
			pl.Data.PreviousAttributes = map[string]json.RawMessage{}
			for k, v := range ev.Data.PreviousAttributes {
				raw, _ := json.Marshal(v)
				pl.Data.PreviousAttributes[k] = raw
			}
			switch {
			case entitlementChange(string(ev.Type), pl):
				changes++
			case strings.HasPrefix(string(ev.Type), "customer.subscription."):
				others++
			}
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	return changes, others
}

// TestEntitlementReadsWithoutSummaryEvents: where Stripe's summary events are not delivered
// (--entitlement-summary-events=false), a Customer's entitlements are read once per subscription change (its first
// invoice paid, its cancellation), and never for another event (its creation, a metadata change, the customer's
// own changes).
func TestEntitlementReadsWithoutSummaryEvents(t *testing.T) {
	restartManager(t, func(o *Options) { o.EntitlementReads = true })
	types := slices.DeleteFunc(slices.Clone(webhookreceiver.HandledTypes), func(typ string) bool {
		return typ == eventEntitlementSummary
	})
	withWebhookEvents(t, types...)
	ctx, ns := newNamespace(t)
	cus, sub, key := entitlementPlan(t, ctx, ns)
	waitEntitlements(t, ctx, cus, key)
	// One read per subscription change: every event of the start that can change entitlements, once, though
	// deliveries are duplicated.
	starts, _ := subscriptionChanges(t, sub.Status.ID)
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := entitlementReads(cus.Status.ID); n != starts {
			return fmt.Errorf("%d reads of active entitlements for %d subscription changes", n, starts)
		}
		return nil
	})
	afterStart := entitlementReads(cus.Status.ID)

	unrelatedChanges(t, ctx, cus, sub)
	changes, others := subscriptionChanges(t, sub.Status.ID)
	if n := entitlementReads(cus.Status.ID) - afterStart; n != changes-starts || others == 0 {
		t.Errorf("%d reads of active entitlements for %d subscription changes and %d other subscription events",
			n, changes-starts, others)
	}

	if err := env.Client.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, sub)
	waitEntitlements(t, ctx, cus)
	if len(cus.Status.Entitlements) != 0 {
		t.Errorf("entitlements after the cancellation: %v", cus.Status.Entitlements)
	}

	// A namespace that declares no feature costs no read: its subscription's start is folded without one.
	ctx, plain := newNamespace(t)
	other := newSubscription(plain, "plain", "plain", "monthly")
	create(t, newProduct(plain, "plan"), newPrice(plain, "monthly", 900), newCustomer(plain, "plain"), other)
	other = waitReady(t, ctx, other)
	var paid []string
	it := simClient().API.Events.List(&stripego.EventListParams{Type: stripego.String(eventInvoicePaid)})
	for it.Next() {
		if it.Event().Data.Object["subscription"] == other.Status.ID {
			paid = append(paid, it.Event().ID)
		}
	}
	if it.Err() != nil || len(paid) == 0 {
		t.Fatalf("no invoice.paid event of %s (%v)", other.Status.ID, it.Err())
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		entries, _, err := ledgerEntries(ctx, operatorNamespace)
		if err != nil {
			return err
		}
		for _, id := range paid {
			if _, ok := entries[id]; !ok {
				return fmt.Errorf("%s not processed yet", id)
			}
		}
		return nil
	})
	plainCustomer := &billingv1.Customer{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: plain, Name: "plain"}, plainCustomer); err != nil {
		t.Fatal(err)
	}
	if n := entitlementReads(plainCustomer.Status.ID); n != 0 {
		t.Errorf("%d reads of active entitlements in a namespace that declares no feature", n)
	}
}

// summaryEvent is a StripeEvent as the receiver stores it, for an entitlement summary of customer with keys.
func summaryEvent(eventID, customer string, created int64, keys ...string) *billingv1.StripeEvent {
	data := make([]string, 0, len(keys))
	for _, k := range keys {
		data = append(data, fmt.Sprintf(`{"id":"ent_%s","object":"entitlements.active_entitlement","feature":"feat_%s",`+
			`"livemode":false,"lookup_key":%q}`, k, k, k))
	}
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"data":{"object":{"object":%q,"customer":%q,`+
		`"livemode":false,"entitlements":{"object":"list","data":[%s],"has_more":false,"url":"/v1/x"}}}}`,
		eventID, eventEntitlementSummary, stripeObjectEntitlementSummary, customer, strings.Join(data, ","))
	return &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace,
		Name: webhookreceiver.EventName(eventID)},
		Spec: billingv1.StripeEventSpec{EventID: eventID, Type: eventEntitlementSummary, Created: created,
			APIVersion: stripego.APIVersion, ObjectType: stripeObjectEntitlementSummary, Payload: payload}}
}

// TestEntitlementSummaryOrder: summaries are folded by their own time, whatever order they arrive in: a newer one
// is the truth without a read, an older one is skipped, a redelivery changes nothing, and two of the same second
// that disagree are settled by one read of Stripe (where this customer, without subscriptions, has none).
func TestEntitlementSummaryOrder(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "ordered")
	create(t, cus)
	cus = waitReady(t, ctx, cus)
	id := cus.Status.ID
	t0 := time.Now().Unix() - 3600 // in the past, so that a read's own time is later than every summary
	store := func(ev *billingv1.StripeEvent) {
		t.Helper()
		create(t, ev)
		testenv.Eventually(t, 20*time.Second, func() error {
			got := &billingv1.StripeEvent{}
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(ev), got)
			if err == nil && got.Status.Phase == "" || err == nil && got.Status.Phase == billingv1.EventPending {
				return fmt.Errorf("event %s not processed yet", ev.Spec.EventID)
			}
			return client.IgnoreNotFound(err)
		})
	}
	store(summaryEvent("evt_"+ns+"_2", id, t0+20, "sso", "analytics"))
	waitEntitlements(t, ctx, cus, "analytics", "sso")
	if got := cus.Status.EntitlementsConfirmedAt.Unix(); got != t0+20 {
		t.Errorf("confirmed at %d, want the summary's time %d", got, t0+20)
	}
	store(summaryEvent("evt_"+ns+"_1", id, t0+10, "sso")) // older, delivered late
	store(summaryEvent("evt_"+ns+"_2b", id, t0+20, "analytics", "sso"))
	waitEntitlements(t, ctx, cus, "analytics", "sso")
	if n := entitlementReads(id); n != 0 {
		t.Errorf("%d reads for summaries whose order their time tells", n)
	}
	// Two summaries of the same second that disagree: Stripe is read once.
	store(summaryEvent("evt_"+ns+"_3", id, t0+20, "analytics"))
	waitEntitlements(t, ctx, cus)
	if n := entitlementReads(id); n != 1 {
		t.Errorf("%d reads for two summaries of one second that disagree, want 1", n)
	}
	if got := cus.Status.EntitlementsConfirmedAt.Unix(); got <= t0+20 {
		t.Errorf("a read confirmed at %d, not after the summaries (%d)", got, t0+20)
	}
}

func TestFeaturePlan(t *testing.T) {
	have := []billingv1.AttachedFeature{{ID: "prodft_1", FeatureID: "feat_a"}, {ID: "prodft_2", FeatureID: "feat_b"}}
	for _, c := range []struct {
		name           string
		want           []string
		attach, detach []string
	}{
		{"in sync", []string{"feat_b", "feat_a"}, nil, nil},
		{"one more", []string{"feat_a", "feat_b", "feat_c"}, []string{"feat_c"}, nil},
		{"one fewer", []string{"feat_a"}, nil, []string{"prodft_2"}},
		{"none", []string{}, nil, []string{"prodft_1", "prodft_2"}},
		{"swapped", []string{"feat_c"}, []string{"feat_c"}, []string{"prodft_1", "prodft_2"}},
	} {
		attach, detach := featurePlan(c.want, have)
		var ids []string
		for _, d := range detach {
			ids = append(ids, d.ID)
		}
		if !slices.Equal(attach, c.attach) || !slices.Equal(ids, c.detach) {
			t.Errorf("%s: attach %v detach %v, want %v %v", c.name, attach, ids, c.attach, c.detach)
		}
	}
}

func TestEntitlementChange(t *testing.T) {
	prev := func(fields ...string) payload {
		var p payload
		p.Data.PreviousAttributes = map[string]json.RawMessage{}
		for _, f := range fields {
			p.Data.PreviousAttributes[f] = json.RawMessage(`null`)
		}
		return p
	}
	invoice := func(reason string) payload {
		var p payload
		p.Data.Object = json.RawMessage(`{"object":"invoice","billing_reason":"` + reason + `"}`)
		return p
	}
	for _, c := range []struct {
		typ  string
		p    payload
		want bool
	}{
		{"customer.subscription.created", prev(), false},
		{"customer.subscription.deleted", prev(), true},
		{"customer.subscription.paused", prev(), true},
		{"customer.subscription.resumed", prev(), true},
		{"customer.subscription.updated", prev("status"), true},
		{"customer.subscription.updated", prev("items", "metadata"), true},
		{"customer.subscription.updated", prev("metadata"), false},
		{"customer.subscription.updated", prev("cancel_at_period_end"), false},
		{"customer.subscription.trial_will_end", prev(), false},
		{"invoice.paid", prev(), false},
		{"invoice.paid", invoice("subscription_create"), true},
		{"invoice.paid", invoice("subscription_cycle"), false},
		{"invoice.payment_failed", invoice("subscription_create"), false},
	} {
		if got := entitlementChange(c.typ, c.p); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.typ, c.p.Data.PreviousAttributes, got, c.want)
		}
	}
}

// TestObserveThenManageFeatures: an existing feature and a product's features adopted with managementPolicy
// Observe are read, never written: status.drift lists the feature's name and the product's features; switching to
// Manage writes exactly that.
func TestObserveThenManageFeatures(t *testing.T) {
	ctx, ns := newNamespace(t)
	sc := simClient()
	feat, err := sc.API.EntitlementsFeatures.New(&stripego.EntitlementsFeatureParams{Name: stripego.String("Old"),
		LookupKey: stripego.String(uniqueKey(ns, "observed"))})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sc.API.Products.New(&stripego.ProductParams{Name: stripego.String("Plan")})
	if err != nil {
		t.Fatal(err)
	}
	observe := billingv1.Management{ManagementPolicy: billingv1.ManagementObserve}
	f := newFeature(ns, "observed", uniqueKey(ns, "observed"))
	f.Spec.Management, f.Spec.Metadata = observe, nil
	f.Spec.Adopt = &billingv1.EntitlementFeatureAdopt{ID: feat.ID}
	p := newProduct(ns, "plan")
	p.Spec.Management, p.Spec.Name = observe, "Plan"
	p.Spec.Adopt = &billingv1.ProductAdopt{ID: prod.ID}
	p.Spec.Features = []billingv1.ProductFeatureReference{{FeatureID: feat.ID}}
	create(t, f, p)
	checkDrifted(t, ctx, f, feat.ID, []billingv1.FieldDrift{{Field: "name", Spec: "Feature observed", Stripe: "Old"}})
	checkDrifted(t, ctx, p, prod.ID, []billingv1.FieldDrift{{Field: "features", Spec: feat.ID}})
	if got := stripeFeature(t, feat.ID); got.Name != "Old" || len(productFeatureKeys(t, prod.ID)) != 0 {
		t.Fatalf("an observed object was written: %+v", got)
	}
	setPolicy(t, ctx, f, billingv1.ManagementManage)
	setPolicy(t, ctx, p, billingv1.ManagementManage)
	checkManaged(t, ctx, f)
	checkManaged(t, ctx, p)
	if got := stripeFeature(t, feat.ID); got.Name != "Feature observed" ||
		!slices.Equal(productFeatureKeys(t, prod.ID), []string{uniqueKey(ns, "observed")}) {
		t.Errorf("managed: feature %+v, product features %v", got, productFeatureKeys(t, prod.ID))
	}
}
