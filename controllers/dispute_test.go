package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func TestFoldDispute(t *testing.T) {
	open := func(id string) billingv1.DisputeSummary {
		return billingv1.DisputeSummary{ID: id, Status: "needs_response", Amount: 4200, Currency: "usd",
			Reason: "fraudulent"}
	}
	closed := func(id, status string) billingv1.DisputeSummary {
		d := open(id)
		d.Status = status
		return d
	}
	type step struct {
		d         billingv1.DisputeSummary
		change    disputeChange
		status    metav1.ConditionStatus
		reason    string
		inMessage []string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"opened then won", []step{
			{open("dp_1"), disputeOpened, metav1.ConditionTrue, billingv1.ReasonDisputeOpened,
				[]string{"dp_1 (4200 usd, fraudulent) is open", "[evt_0]"}},
			{open("dp_1"), disputeUnchanged, metav1.ConditionTrue, billingv1.ReasonDisputeOpened, nil},
			{closed("dp_1", "won"), disputeClosedNow, metav1.ConditionFalse, billingv1.ReasonDisputeWon,
				[]string{"dp_1 (4200 usd, fraudulent) closed: won", "[evt_2]"}},
			{closed("dp_1", "won"), disputeUnchanged, metav1.ConditionFalse, billingv1.ReasonDisputeWon, nil},
		}},
		{"two open, one closes, then the other is lost", []step{
			{open("dp_1"), disputeOpened, metav1.ConditionTrue, billingv1.ReasonDisputeOpened, nil},
			{open("dp_2"), disputeOpened, metav1.ConditionTrue, billingv1.ReasonDisputeOpened,
				[]string{"2 disputes are open: dp_1", "dp_2"}},
			{closed("dp_1", "won"), disputeClosedNow, metav1.ConditionTrue, billingv1.ReasonDisputeOpened,
				[]string{"Dispute dp_2 (4200 usd, fraudulent) is open"}},
			{closed("dp_2", "lost"), disputeClosedNow, metav1.ConditionFalse, billingv1.ReasonDisputeLost,
				[]string{"dp_2 (4200 usd, fraudulent) closed: lost"}},
		}},
		{"closed delivered before created", []step{
			{closed("dp_1", "lost"), disputeClosedNow, metav1.ConditionFalse, billingv1.ReasonDisputeLost, nil},
			{open("dp_1"), disputeUnchanged, metav1.ConditionFalse, billingv1.ReasonDisputeLost, nil},
		}},
		{"an early fraud warning closes", []step{
			{closed("dp_1", "warning_closed"), disputeClosedNow, metav1.ConditionFalse,
				billingv1.ReasonDisputeClosed, nil},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			for i, s := range c.steps {
				if got := foldDispute(cus, s.d, fmt.Sprintf("evt_%d", i)); got != s.change {
					t.Errorf("step %d (%s %s): change %d, want %d", i, s.d.ID, s.d.Status, got, s.change)
				}
				cond := meta.FindStatusCondition(cus.Status.Conditions, billingv1.ConditionDisputed)
				if cond == nil || cond.Status != s.status || cond.Reason != s.reason || cond.ObservedGeneration != 3 {
					t.Fatalf("step %d: condition %+v, want %s %s", i, cond, s.status, s.reason)
				}
				for _, want := range s.inMessage {
					if !strings.Contains(cond.Message, want) {
						t.Errorf("step %d: message %q lacks %q", i, cond.Message, want)
					}
				}
			}
		})
	}

	// Status stays bounded: every open dispute, and the last few closed ones.
	cus := &billingv1.Customer{}
	for i := range 12 {
		id := fmt.Sprintf("dp_%02d", i)
		foldDispute(cus, open(id), "evt")
		if i < 10 {
			foldDispute(cus, closed(id, "won"), "evt")
		}
	}
	ids := make([]string, 0, len(cus.Status.Disputes))
	for _, d := range cus.Status.Disputes {
		ids = append(ids, d.ID+"/"+d.Status)
	}
	want := "dp_10/needs_response dp_11/needs_response dp_05/won dp_06/won dp_07/won dp_08/won dp_09/won"
	if strings.Join(ids, " ") != want {
		t.Errorf("disputes kept: %s, want %s", strings.Join(ids, " "), want)
	}
	for i := range 30 {
		foldDispute(cus, open(fmt.Sprintf("dp_x%02d", i)), "evt")
	}
	if n := len(cus.Status.Disputes); n != maxDisputes {
		t.Errorf("%d disputes kept, want %d", n, maxDisputes)
	}
}

// simAdmin posts to the simulator's admin API and decodes the answer.
func simAdmin(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, simURL+path, strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	return out
}

// paymentIntentOf returns the payment intent of a subscription's latest invoice, as the simulator holds it.
func paymentIntentOf(t *testing.T, subID string) string {
	t.Helper()
	p := &stripego.SubscriptionParams{}
	p.AddExpand("latest_invoice")
	sub, err := simClient().API.Subscriptions.Get(subID, p)
	if err != nil {
		t.Fatal(err)
	}
	if sub.LatestInvoice == nil || sub.LatestInvoice.Status != "paid" || sub.LatestInvoice.PaymentIntent == nil {
		t.Fatalf("subscription %s: latest invoice %+v", subID, sub.LatestInvoice)
	}
	return sub.LatestInvoice.PaymentIntent.ID
}

func disputeCount(event, status string) float64 {
	return testutil.ToFloat64(disputes.WithLabelValues(event, status))
}

// A customer with two paid subscriptions disputes both payments (through the simulator's admin API, delivered as
// signed webhooks to the receiver and the real API server): the Customer shows Disputed=True naming both, with a
// Warning Event each; one is won (still Disputed, a Normal Event), the other lost (Disputed=False, reason
// DisputeLost, a Warning Event). The disputes metric counts each event once.
func TestWebhookDisputes(t *testing.T) {
	withWebhooks(t)
	ctx, ns := newNamespace(t)
	cus := newCustomer(ns, "disputer")
	subA := newSubscription(ns, "sub-a", "disputer", "monthly")
	subB := newSubscription(ns, "sub-b", "disputer", "yearly")
	create(t, newProduct(ns, "plan"), newPrice(ns, "monthly", 4200), newPrice(ns, "yearly", 990), cus, subA, subB)
	subA, subB = waitReady(t, ctx, subA), waitReady(t, ctx, subB)
	cus = waitReady(t, ctx, cus)
	piA, piB := paymentIntentOf(t, subA.Status.ID), paymentIntentOf(t, subB.Status.ID)
	createdBefore := disputeCount("created", "needs_response")
	wonBefore, lostBefore := disputeCount("closed", "won"), disputeCount("closed", "lost")

	waitDisputed := func(status metav1.ConditionStatus, reason string, inMessage ...string) metav1.Condition {
		t.Helper()
		var got metav1.Condition
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
				return err
			}
			c := meta.FindStatusCondition(cus.Status.Conditions, billingv1.ConditionDisputed)
			if c == nil || c.Status != status || c.Reason != reason {
				return fmt.Errorf("Disputed is %+v, want %s %s", c, status, reason)
			}
			for _, want := range inMessage {
				if !strings.Contains(c.Message, want) {
					return fmt.Errorf("Disputed message %q lacks %q", c.Message, want)
				}
			}
			got = *c
			return nil
		})
		return got
	}

	a := simAdmin(t, "/_sim/disputes", map[string]string{"payment_intent": piA})["id"].(string)
	waitDisputed(metav1.ConditionTrue, billingv1.ReasonDisputeOpened, a, "4200 usd", "fraudulent")
	assertEvent(t, ns, cus.Name, "Warning", billingv1.ReasonDisputeOpened)
	b := simAdmin(t, "/_sim/disputes", map[string]string{"payment_intent": piB,
		"reason": "product_not_received"})["id"].(string)
	waitDisputed(metav1.ConditionTrue, billingv1.ReasonDisputeOpened, "2 disputes are open", a, b,
		"990 usd, product_not_received")

	simAdmin(t, "/_sim/disputes/"+a+"/close", map[string]string{"status": "won"})
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
			return err
		}
		if len(cus.Status.Disputes) != 2 || cus.Status.Disputes[1].ID != a || cus.Status.Disputes[1].Status != "won" {
			return fmt.Errorf("disputes %+v", cus.Status.Disputes)
		}
		return nil
	})
	c := waitDisputed(metav1.ConditionTrue, billingv1.ReasonDisputeOpened, b)
	if strings.Contains(c.Message, a) {
		t.Errorf("the won dispute is still named: %q", c.Message)
	}
	assertEvent(t, ns, cus.Name, "Normal", billingv1.ReasonDisputeWon)

	simAdmin(t, "/_sim/disputes/"+b+"/close", map[string]string{"status": "lost"})
	waitDisputed(metav1.ConditionFalse, billingv1.ReasonDisputeLost, b, "closed: lost")
	assertEvent(t, ns, cus.Name, "Warning", billingv1.ReasonDisputeLost)
	if d := cus.Status.Disputes; len(d) != 2 || d[0].ID != a || d[1].ID != b || d[1].Status != "lost" ||
		d[1].Amount != 990 || d[1].PaymentIntent != piB || d[1].Reason != "product_not_received" {
		t.Errorf("status.disputes %+v", d)
	}
	// The Customer itself is untouched: still Ready, and its own event bookkeeping did not move.
	if !meta.IsStatusConditionTrue(cus.Status.Conditions, billingv1.ConditionReady) {
		t.Errorf("conditions %+v", cus.Status.Conditions)
	}

	// Each event counted once, however often it was delivered.
	testenv.Eventually(t, 10*time.Second, func() error {
		got := [3]float64{disputeCount("created", "needs_response") - createdBefore,
			disputeCount("closed", "won") - wonBefore, disputeCount("closed", "lost") - lostBefore}
		if got != [3]float64{2, 1, 1} {
			return fmt.Errorf("disputes counted (created, won, lost): %v", got)
		}
		return nil
	})
	for _, id := range []string{a, b} {
		for _, e := range disputeEvents(t, ctx, id) {
			if e.Status.Phase != billingv1.EventProcessed || e.Status.Target == nil ||
				e.Status.Target.Kind != kindCustomer || e.Status.Target.Name != cus.Name {
				t.Errorf("%s %s: %+v", e.Spec.Type, id, e.Status)
			}
		}
	}
}

// disputeEvents returns the stored StripeEvents of a dispute.
func disputeEvents(t *testing.T, ctx context.Context, id string) []billingv1.StripeEvent {
	t.Helper()
	l := &billingv1.StripeEventList{}
	if err := env.Client.List(ctx, l, client.InNamespace(operatorNamespace)); err != nil {
		t.Fatal(err)
	}
	var out []billingv1.StripeEvent
	for _, e := range l.Items {
		if e.Spec.ObjectID == id {
			out = append(out, e)
		}
	}
	return out
}

// A dispute of a customer that no Customer in the cluster manages is Unroutable after the worker's retries, naming
// the customer it looked for; it is counted all the same, so the alert fires.
func TestWebhookDisputeOfUnknownCustomer(t *testing.T) {
	withWebhooks(t)
	ctx, _ := newNamespace(t)
	sc := simClient().API
	cus, err := sc.Customers.New(&stripego.CustomerParams{PaymentMethod: stripego.String("pm_card_visa"),
		InvoiceSettings: &stripego.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripego.String("pm_card_visa")}})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sc.Products.New(&stripego.ProductParams{Name: stripego.String("elsewhere")})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := sc.Prices.New(&stripego.PriceParams{Product: stripego.String(prod.ID), Currency: stripego.String("usd"),
		UnitAmount: stripego.Int64(700), Recurring: &stripego.PriceRecurringParams{Interval: stripego.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := sc.Subscriptions.New(&stripego.SubscriptionParams{Customer: stripego.String(cus.ID),
		Items: []*stripego.SubscriptionItemsParams{{Price: stripego.String(pr.ID)}}})
	if err != nil {
		t.Fatal(err)
	}
	before := disputeCount("created", "needs_response")
	id := simAdmin(t, "/_sim/disputes", map[string]string{"payment_intent": paymentIntentOf(t, sub.ID)})["id"].(string)
	testenv.Eventually(t, 30*time.Second, func() error {
		evs := disputeEvents(t, ctx, id)
		if len(evs) != 1 || evs[0].Status.Phase != billingv1.EventUnroutable {
			return fmt.Errorf("dispute events %+v", evs)
		}
		if msg := evs[0].Status.Message; !strings.Contains(msg, "customer "+cus.ID) || !strings.Contains(msg, id) {
			t.Errorf("unroutable message %q", msg)
		}
		return nil
	})
	if got := disputeCount("created", "needs_response") - before; got != 1 {
		t.Errorf("counted %v disputes", got)
	}
}
