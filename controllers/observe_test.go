package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// waitObserved waits until obj is Ready as observed for its generation and returns its InSync condition.
func waitObserved[T billingv1.StripeObject](t *testing.T, ctx context.Context, obj T) metav1.Condition {
	t.Helper()
	var in metav1.Condition
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		conds := obj.GetStripeStatus().Conditions
		c := meta.FindStatusCondition(conds, billingv1.ConditionReady)
		sync := meta.FindStatusCondition(conds, billingv1.ConditionInSync)
		if c == nil || c.Reason != billingv1.ReasonObserved || c.Status != metav1.ConditionTrue ||
			c.ObservedGeneration != obj.GetGeneration() || sync == nil ||
			sync.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("not observed for generation %d: %+v", obj.GetGeneration(), conds)
		}
		in = *sync
		return nil
	})
	return in
}

// setPolicy changes spec.managementPolicy.
func setPolicy(t *testing.T, ctx context.Context, obj billingv1.StripeObject, p billingv1.ManagementPolicy) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"managementPolicy":%q}}`, p))
	if err := env.Client.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// checkDrifted checks an observed object: Ready as observed, InSync False, the drift listed, the adopted ID,
// kstatus Current, no finalizer.
func checkDrifted(t *testing.T, ctx context.Context, o billingv1.StripeObject, id string,
	want []billingv1.FieldDrift) {
	t.Helper()
	in := waitObserved(t, ctx, o)
	st := o.GetStripeStatus()
	if in.Status != metav1.ConditionFalse || in.Reason != billingv1.ReasonDrifted {
		t.Errorf("%s: InSync %s %s, want False Drifted", o.GetName(), in.Status, in.Reason)
	}
	if d := cmp.Diff(want, st.Drift); d != "" {
		t.Errorf("%s: status.drift (-want +got):\n%s", o.GetName(), d)
	}
	if st.ID != id {
		t.Errorf("%s: status.id %q, want %q", o.GetName(), st.ID, id)
	}
	if got := kstatus(t, o); got != status.CurrentStatus {
		t.Errorf("%s: kstatus %s, want Current", o.GetName(), got)
	}
	if len(o.GetFinalizers()) != 0 {
		t.Errorf("%s: an observed object holds finalizers %v", o.GetName(), o.GetFinalizers())
	}
}

// checkManaged checks an object switched to Manage: Ready, no drift and no InSync left, the finalizer held.
func checkManaged(t *testing.T, ctx context.Context, o billingv1.StripeObject) {
	t.Helper()
	o = waitReady(t, ctx, o)
	st := o.GetStripeStatus()
	if len(st.Drift) != 0 || meta.FindStatusCondition(st.Conditions, billingv1.ConditionInSync) != nil {
		t.Errorf("%s: drift %+v and InSync remain when managed", o.GetName(), st.Drift)
	}
	if len(o.GetFinalizers()) != 1 {
		t.Errorf("%s: managed without the finalizer: %v", o.GetName(), o.GetFinalizers())
	}
}

// An existing Stripe account brought under GitOps: every kind adopted with managementPolicy Observe is read and
// never written, status.drift lists the differences field by field and InSync is False; switching to Manage writes
// exactly that, one update per object.
func TestObserveThenManage(t *testing.T) {
	ctx, ns := newNamespace(t)
	sc := simClient()
	cus, err := sc.API.Customers.New(&stripego.CustomerParams{Email: stripego.String("old@acme.example"),
		Name: stripego.String("Acme (old)"), Metadata: map[string]string{"tenant": "old"}})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sc.API.Products.New(&stripego.ProductParams{Name: stripego.String("Pro (old)"),
		Description: stripego.String("old description")})
	if err != nil {
		t.Fatal(err)
	}
	key := ns + "-observed"
	pr, err := sc.API.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.ID),
		Currency: stripego.String("usd"), UnitAmount: stripego.Int64(1500), LookupKey: stripego.String(key),
		Nickname:  stripego.String("old nickname"),
		Recurring: &stripego.PriceRecurringParams{Interval: stripego.String("month")},
		Metadata:  map[string]string{"tier": "old"}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := sc.API.Subscriptions.New(&stripego.SubscriptionParams{Customer: stripego.String(cus.ID),
		Items:           []*stripego.SubscriptionItemsParams{{Price: stripego.String(pr.ID), Quantity: stripego.Int64(1)}},
		TrialPeriodDays: stripego.Int64(14), Metadata: map[string]string{"team": "old"}})
	if err != nil {
		t.Fatal(err)
	}

	observe := billingv1.Management{ManagementPolicy: billingv1.ManagementObserve}
	customer := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
		Spec: billingv1.CustomerSpec{Management: observe, Email: "billing@acme.example", Name: "Acme",
			Metadata: billingv1.Metadata{"tenant": "acme"}, Adopt: &billingv1.CustomerAdopt{ID: cus.ID}}}
	product := &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
		Spec: billingv1.ProductSpec{Management: observe, Name: "Pro", Description: "Everything",
			Adopt: &billingv1.ProductAdopt{ID: prod.ID}}}
	price := newPrice(ns, "monthly", 1500)
	price.Spec.Management = observe
	price.Spec.LookupKey, price.Spec.Nickname = key, "Pro monthly"
	price.Spec.Metadata = billingv1.Metadata{"tier": "pro"}
	price.Spec.Adopt = &billingv1.PriceAdopt{LookupKey: key}
	subscription := newSubscription(ns, "acme-pro", "acme", "monthly")
	subscription.Spec.Management = observe
	subscription.Spec.Items[0].Quantity = ptr.To[int64](3)
	subscription.Spec.Metadata = billingv1.Metadata{"team": "platform"}
	subscription.Spec.Adopt = &billingv1.SubscriptionAdopt{ID: sub.ID}

	before := writes()
	create(t, customer, product, price, subscription)
	objs := []billingv1.StripeObject{customer, product, price, subscription}
	want := map[string][]billingv1.FieldDrift{
		"acme": {{Field: "email", Spec: "billing@acme.example", Stripe: "old@acme.example"},
			{Field: "metadata.tenant", Spec: "acme", Stripe: "old"}, {Field: "name", Spec: "Acme", Stripe: "Acme (old)"}},
		"plan": {{Field: "description", Spec: "Everything", Stripe: "old description"},
			{Field: "name", Spec: "Pro", Stripe: "Pro (old)"}},
		"monthly": {{Field: "metadata.tier", Spec: "pro", Stripe: "old"},
			{Field: "nickname", Spec: "Pro monthly", Stripe: "old nickname"}},
		"acme-pro": {{Field: "items." + pr.ID + ".quantity", Spec: "3", Stripe: "1"},
			{Field: "metadata.team", Spec: "platform", Stripe: "old"}},
	}
	ids := map[string]string{"acme": cus.ID, "plan": prod.ID, "monthly": pr.ID, "acme-pro": sub.ID}
	for _, o := range objs {
		checkDrifted(t, ctx, o, ids[o.GetName()], want[o.GetName()])
	}
	if n := writes() - before; n != 0 {
		t.Fatalf("%d Stripe writes while observing", n)
	}

	// Fixing the YAML brings InSync to True, still without a write.
	customer.Spec.Email, customer.Spec.Name = "old@acme.example", "Acme (old)"
	customer.Spec.Metadata = billingv1.Metadata{"tenant": "old"}
	if err := env.Client.Update(ctx, customer); err != nil {
		t.Fatal(err)
	}
	if in := waitObserved(t, ctx, customer); in.Status != metav1.ConditionTrue || len(customer.Status.Drift) != 0 {
		t.Errorf("after fixing the YAML: InSync %s, drift %+v", in.Status, customer.Status.Drift)
	}
	customer.Spec.Email = "billing@acme.example" // the one change left for Manage
	if err := env.Client.Update(ctx, customer); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, ctx, customer)
	if n := writes() - before; n != 0 {
		t.Fatalf("%d Stripe writes while observing", n)
	}

	// Manage applies the plan: one update per object.
	endpoints := []string{"POST /v1/customers/{id}", "POST /v1/products/{id}", "POST /v1/prices/{id}",
		"POST /v1/subscriptions/{id}"}
	counts := map[string]int64{}
	for _, e := range endpoints {
		counts[e] = calls(e)
	}
	before = writes()
	for _, o := range objs {
		setPolicy(t, ctx, o, billingv1.ManagementManage)
	}
	for _, o := range objs {
		checkManaged(t, ctx, o)
	}
	for _, e := range endpoints {
		if n := calls(e) - counts[e]; n != 1 {
			t.Errorf("%s: %d calls, want 1", e, n)
		}
	}
	if n := writes() - before; n != int64(len(endpoints)) {
		t.Errorf("%d Stripe writes for Manage, want %d", n, len(endpoints))
	}
	gotCus := stripeCustomer(t, cus.ID)
	gotProd, _ := sc.API.Products.Get(prod.ID, nil)
	gotPrice := stripePrice(t, pr.ID)
	gotSub := stripeSubscription(t, sub.ID)
	if gotCus.Email != "billing@acme.example" || gotCus.Metadata[billingv1.MetadataUID] != string(customer.UID) ||
		gotProd.Name != "Pro" || gotProd.Description != "Everything" ||
		gotPrice.Nickname != "Pro monthly" || gotPrice.Metadata["tier"] != "pro" ||
		gotSub.Items.Data[0].Quantity != 3 || gotSub.Metadata["team"] != "platform" {
		t.Errorf("Stripe after Manage: customer %s %v, product %q %q, price %q %v, subscription quantity %d %v",
			gotCus.Email, gotCus.Metadata, gotProd.Name, gotProd.Description, gotPrice.Nickname, gotPrice.Metadata,
			gotSub.Items.Data[0].Quantity, gotSub.Metadata)
	}
}

// An observed object that names no Stripe object is Stalled (nothing is created); deleting an observed object
// leaves Stripe alone, even one that was managed before.
func TestObserveNothingAndDeletion(t *testing.T) {
	ctx, ns := newNamespace(t)
	nothing := newProduct(ns, "nothing")
	nothing.Spec.ManagementPolicy = billingv1.ManagementObserve
	create(t, nothing)
	waitReason(t, ctx, nothing, billingv1.ReasonNothingToObserve)
	assertStalled(t, nothing)

	managed := newCustomer(ns, "was-managed")
	managed.Spec.DeletionPolicy = billingv1.CustomerDelete
	create(t, managed)
	managed = waitReady(t, ctx, managed)
	setPolicy(t, ctx, managed, billingv1.ManagementObserve)
	if in := waitObserved(t, ctx, managed); in.Status != metav1.ConditionTrue {
		t.Errorf("a managed customer observed: InSync %s %s", in.Status, in.Message)
	}
	before := writes()
	if err := env.Client.Delete(ctx, managed); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ctx, managed)
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes deleting an observed object", n)
	}
	if got := stripeCustomer(t, managed.Status.ID); got.Deleted {
		t.Error("deletionPolicy Delete ran for an observed Customer")
	}
	if sim.ObjectsByUID()["product"][string(nothing.UID)] != 0 {
		t.Error("an observed Product was created in Stripe")
	}
}

// Observing works with a restricted key that can only read: the key's permissions are enough to observe every
// kind, and Manage is refused by Stripe with the missing write permission named.
func TestObserveWithAReadOnlyKey(t *testing.T) {
	ctx, ns := newNamespace(t)
	const readOnly = "rk_test_read_only_observer"
	sim.RegisterKey(stripesim.KeyConfig{Key: readOnly, Permissions: []string{"rak_customer_read",
		"rak_product_read", "rak_price_read", "rak_subscription_read", "rak_invoice_read", "rak_payment_intent_read"}})
	sc := simClient()
	cus, err := sc.API.Customers.New(&stripego.CustomerParams{Email: stripego.String("ro@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sc.API.Products.New(&stripego.ProductParams{Name: stripego.String("Read only")})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := sc.API.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.ID),
		Currency: stripego.String("usd"), UnitAmount: stripego.Int64(300),
		Recurring: &stripego.PriceRecurringParams{Interval: stripego.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := sc.API.Subscriptions.New(&stripego.SubscriptionParams{Customer: stripego.String(cus.ID),
		Items:           []*stripego.SubscriptionItemsParams{{Price: stripego.String(pr.ID), Quantity: stripego.Int64(1)}},
		TrialPeriodDays: stripego.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
		Data: map[string][]byte{credentials.APIKeyField: []byte(readOnly)}})
	observe := billingv1.Management{ManagementPolicy: billingv1.ManagementObserve}
	customer := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ro"},
		Spec: billingv1.CustomerSpec{Management: observe, Email: "new@example.com",
			Adopt: &billingv1.CustomerAdopt{ID: cus.ID}}}
	product := &billingv1.Product{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
		Spec: billingv1.ProductSpec{Management: observe, Name: "Read only", Adopt: &billingv1.ProductAdopt{ID: prod.ID}}}
	price := newPrice(ns, "monthly", 300)
	price.Spec.Management, price.Spec.LookupKey = observe, ""
	price.Spec.Adopt = &billingv1.PriceAdopt{ID: pr.ID}
	subscription := newSubscription(ns, "ro", "ro", "monthly")
	subscription.Spec.Management = observe
	subscription.Spec.Adopt = &billingv1.SubscriptionAdopt{ID: sub.ID}
	before := writes()
	create(t, customer, product, price, subscription)
	for _, o := range []billingv1.StripeObject{customer, product, price, subscription} {
		waitObserved(t, ctx, o)
	}
	if d := customer.Status.Drift; len(d) != 1 || d[0].Field != "email" {
		t.Errorf("customer drift %+v", d)
	}
	if n := writes() - before; n != 0 {
		t.Errorf("%d Stripe writes with the read-only key", n)
	}
	setPolicy(t, ctx, customer, billingv1.ManagementManage)
	cond := waitReason(t, ctx, customer, billingv1.ReasonPermissionDenied)
	if !strings.Contains(cond.Message, "rak_customer_write") {
		t.Errorf("Manage with the read-only key: %q", cond.Message)
	}
}

// The loop observes an object when its managementPolicy is Observe or the operator runs with --observe-only.
func TestObserving(t *testing.T) {
	for _, tc := range []struct {
		policy billingv1.ManagementPolicy
		flag   bool
		want   bool
	}{
		{"", false, false}, {billingv1.ManagementManage, false, false}, {billingv1.ManagementObserve, false, true},
		{"", true, true}, {billingv1.ManagementManage, true, true},
	} {
		r := &Reconciler[*billingv1.Price]{Options: Options{ObserveOnly: tc.flag}}
		p := &billingv1.Price{Spec: billingv1.PriceSpec{Management: billingv1.Management{ManagementPolicy: tc.policy}}}
		if got := r.observing(p); got != tc.want {
			t.Errorf("policy %q, --observe-only=%v: observing %v, want %v", tc.policy, tc.flag, got, tc.want)
		}
	}
}

// setDrift leaves the operator's stamp out, bounds the list, and counts every difference in InSync's message.
func TestSetDrift(t *testing.T) {
	var changed = map[string]string{"metadata.k8s_uid": "->u", "email": "a@x->b@x", "active": "true->false"}
	for i := range 25 {
		changed[fmt.Sprintf("metadata.k%02d", i)] = "->v"
	}
	c := &billingv1.Customer{}
	setDrift(c, driftOf(changed))
	if len(c.Status.Drift) != billingv1.MaxDrift || c.Status.Drift[0] != (billingv1.FieldDrift{Field: "active",
		Spec: "false", Stripe: "true"}) || c.Status.Drift[1].Field != "email" {
		t.Errorf("drift %+v", c.Status.Drift)
	}
	in := meta.FindStatusCondition(c.Status.Conditions, billingv1.ConditionInSync)
	if in == nil || in.Status != metav1.ConditionFalse || !strings.HasPrefix(in.Message, "27 fields differ") ||
		strings.Contains(in.Message, "k8s_uid") {
		t.Errorf("InSync %+v", in)
	}
	setDrift(c, driftOf(map[string]string{"metadata.k8s_uid": "->u"}))
	if in := meta.FindStatusCondition(c.Status.Conditions, billingv1.ConditionInSync); len(c.Status.Drift) != 0 ||
		in.Status != metav1.ConditionTrue {
		t.Errorf("only the stamp differs: drift %+v, InSync %+v", c.Status.Drift, in)
	}
}

// A wait's grace period counts from when the wait began, not from an earlier transition of Ready.
func TestWaitingSince(t *testing.T) {
	c := &billingv1.Customer{}
	setReconciling(c, billingv1.ReasonStripeUnavailable, "5xx")
	old := metav1.NewTime(time.Now().Add(-time.Hour))
	c.Status.Conditions[0].LastTransitionTime = old
	now := time.Now()
	if got := waitingSince(c, now); !got.Equal(now) {
		t.Errorf("not waiting yet: since %v", got)
	}
	setWaiting(c, "Customer x/y does not exist")
	if got := waitingSince(c, now.Add(time.Minute)); got.Before(now.Add(-time.Second)) {
		t.Errorf("the wait began at %v, before it was set", got)
	}
	ready := meta.FindStatusCondition(c.Status.Conditions, billingv1.ConditionReady)
	ready.LastTransitionTime = old
	setWaiting(c, "Customer x/y exists but has no Stripe ID yet")
	if got := waitingSince(c, now); !got.Equal(old.Time) {
		t.Errorf("a continued wait restarted: since %v, want %v", got, old.Time)
	}
}

// An observed Customer changed in Stripe while webhooks flow: its event asks for a read at once, the change shows in
// status.drift, nothing is restored, and the DriftDetected Event says it is observed only.
func TestObservedChangeInStripeIsReportedNotRestored(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	made, err := simClient().API.Customers.New(&stripego.CustomerParams{Email: stripego.String("seen@example.com"),
		Name: stripego.String("Seen")})
	if err != nil {
		t.Fatal(err)
	}
	cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "seen"},
		Spec: billingv1.CustomerSpec{Email: "seen@example.com", Name: "Seen",
			Adopt: &billingv1.CustomerAdopt{ID: made.ID}}}
	cus.Spec.ManagementPolicy = billingv1.ManagementObserve
	create(t, cus)
	if in := waitObserved(t, ctx, cus); in.Status != metav1.ConditionTrue {
		t.Fatalf("InSync before the change: %+v", in)
	}
	writes0 := writes()
	if _, err := simClient().API.Customers.Update(made.ID,
		&stripego.CustomerParams{Name: stripego.String("Renamed in the Dashboard")}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
			return err
		}
		for _, d := range cus.Status.Drift {
			if d.Field == "name" && strings.Contains(d.Stripe, "Renamed") {
				return nil
			}
		}
		return fmt.Errorf("drift %+v", cus.Status.Drift)
	})
	evs := eventsFor(t, ns, cus.Name, reasonDriftDetected)
	if len(evs) == 0 || !strings.Contains(evs[0].Message, "observed only") {
		t.Errorf("DriftDetected events: %+v", evs)
	}
	time.Sleep(time.Second)
	if n := writes() - writes0; n != 1 {
		t.Errorf("%d Stripe writes, want 1 (the test's own change)", n)
	}
	if got := stripeCustomer(t, made.ID); got.Name != "Renamed in the Dashboard" {
		t.Errorf("the change was restored: %q", got.Name)
	}
}
