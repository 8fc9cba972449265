package stripesim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

const day = int64(86400)

// clockFixture creates a test clock, a customer on it with pm as default payment method, and a monthly price.
func clockFixture(t *testing.T, sc *client.API, pm string) (*stripe.TestHelpersTestClock, *stripe.Customer,
	*stripe.Price) {
	t.Helper()
	clock := must(sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{
		FrozenTime: stripe.Int64(1_700_000_000), Name: stripe.String("lifecycle")}))
	p := &stripe.CustomerParams{TestClock: stripe.String(clock.ID)}
	if pm != "" {
		p.PaymentMethod = stripe.String(pm)
		p.InvoiceSettings = &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm)}
	}
	cus := must(sc.Customers.New(p))
	_, pr := fixture(t, sc, 2500)
	return clock, cus, pr
}

// advance moves the clock and waits until it is ready again.
func advance(t *testing.T, sc *client.API, clock *stripe.TestHelpersTestClock, to int64) {
	t.Helper()
	got := must(sc.TestHelpersTestClocks.Advance(clock.ID, &stripe.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripe.Int64(to)}))
	if got.Status != stripe.TestHelpersTestClockStatusAdvancing {
		t.Errorf("advance answered %s, want advancing", got.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got = must(sc.TestHelpersTestClocks.Get(clock.ID, nil))
		if got.Status == stripe.TestHelpersTestClockStatusReady {
			if got.FrozenTime != to {
				t.Fatalf("clock at %d, want %d", got.FrozenTime, to)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the clock never became ready")
}

func subscribe(t *testing.T, sc *client.API, cus *stripe.Customer, pr *stripe.Price,
	mut func(*stripe.SubscriptionParams)) (*stripe.Subscription, error) {
	t.Helper()
	p := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}}
	p.AddExpand("latest_invoice")
	if mut != nil {
		mut(p)
	}
	return sc.Subscriptions.New(p)
}

func subStatus(t *testing.T, sc *client.API, id string) *stripe.Subscription {
	t.Helper()
	p := &stripe.SubscriptionParams{}
	p.AddExpand("latest_invoice")
	return must(sc.Subscriptions.Get(id, p))
}

func TestLifecycleFirstPayment(t *testing.T) {
	cases := []struct {
		pm       string
		behavior string
		status   stripe.SubscriptionStatus
		invoice  stripe.InvoiceStatus
		decline  string
	}{
		{pm: "pm_card_visa", status: "active", invoice: "paid"},
		{pm: "pm_card_chargeDeclined", status: "incomplete", invoice: "open"},
		{pm: "pm_card_chargeDeclinedInsufficientFunds", status: "incomplete", invoice: "open"},
		{pm: "pm_card_authenticationRequired", status: "incomplete", invoice: "open"},
		{pm: "", status: "incomplete", invoice: "open"},
		{pm: "pm_card_chargeDeclinedInsufficientFunds", behavior: "error_if_incomplete",
			decline: "insufficient_funds"},
		{pm: "pm_card_chargeDeclinedExpiredCard", behavior: "error_if_incomplete", decline: "expired_card"},
		{pm: "pm_card_chargeDeclined", behavior: "error_if_incomplete", decline: "generic_decline"},
	}
	for _, c := range cases {
		t.Run(c.pm+" "+c.behavior, func(t *testing.T) {
			sim, sc := newClient(t, Options{})
			t.Cleanup(sim.Close)
			_, cus, pr := clockFixture(t, sc, c.pm)
			sub, err := subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) {
				if c.behavior != "" {
					p.PaymentBehavior = stripe.String(c.behavior)
				}
			})
			if c.decline != "" {
				var se *stripe.Error
				if !errors.As(err, &se) || se.HTTPStatusCode != 402 || se.Type != stripe.ErrorTypeCard ||
					string(se.DeclineCode) != c.decline {
					t.Fatalf("want a 402 card_error with decline code %s, got %v", c.decline, err)
				}
				it := sc.Subscriptions.List(&stripe.SubscriptionListParams{Status: stripe.String("all")})
				if it.Next() {
					t.Error("a subscription was created despite error_if_incomplete")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sub.Status != c.status || sub.LatestInvoice.Status != c.invoice {
				t.Errorf("status %s invoice %s, want %s %s", sub.Status, sub.LatestInvoice.Status, c.status, c.invoice)
			}
		})
	}
}

func TestLifecycleIncompleteExpires(t *testing.T) {
	sim, sc := newClient(t, Options{})
	t.Cleanup(sim.Close)
	clock, cus, pr := clockFixture(t, sc, "pm_card_chargeDeclined")
	sub := must(subscribe(t, sc, cus, pr, nil))
	advance(t, sc, clock, clock.FrozenTime+22*3600)
	if s := subStatus(t, sc, sub.ID); s.Status != "incomplete" {
		t.Fatalf("after 22 h: %s", s.Status)
	}
	advance(t, sc, clock, clock.FrozenTime+24*3600)
	if s := subStatus(t, sc, sub.ID); s.Status != "incomplete_expired" {
		t.Errorf("after 24 h: %s, want incomplete_expired", s.Status)
	}
}

func TestLifecycleTrialRenewalDunningAndRecovery(t *testing.T) {
	sim, sc := newClient(t, Options{Dunning: DunningOptions{Retries: 2, Interval: 2 * 24 * time.Hour}})
	t.Cleanup(sim.Close)
	clock, cus, pr := clockFixture(t, sc, "pm_card_visa")
	sub := must(subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) {
		p.TrialPeriodDays = stripe.Int64(7)
		p.AddMetadata("k8s_uid", "uid-1")
	}))
	if sub.Status != "trialing" || sub.LatestInvoice.AmountDue != 0 {
		t.Fatalf("trial start: %s, amount due %d", sub.Status, sub.LatestInvoice.AmountDue)
	}
	// An invoice carries its subscription's metadata, as Stripe's subscription_details does.
	if d := sub.LatestInvoice.SubscriptionDetails; d == nil || d.Metadata["k8s_uid"] != "uid-1" {
		t.Errorf("the invoice's subscription_details: %+v", d)
	}
	t0 := clock.FrozenTime

	// The trial ends: the first paid invoice, active.
	advance(t, sc, clock, t0+8*day)
	s := subStatus(t, sc, sub.ID)
	if s.Status != "active" || s.LatestInvoice.Status != "paid" || s.LatestInvoice.AmountDue != 2500 ||
		s.CurrentPeriodStart != t0+7*day {
		t.Fatalf("after the trial: %s, invoice %s %d, period start %d", s.Status, s.LatestInvoice.Status,
			s.LatestInvoice.AmountDue, s.CurrentPeriodStart)
	}
	// The card now fails: the renewal goes past_due.
	must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
		DefaultPaymentMethod: stripe.String("pm_card_chargeDeclinedInsufficientFunds")}}))
	periodEnd := s.CurrentPeriodEnd
	advance(t, sc, clock, periodEnd+3600)
	s = subStatus(t, sc, sub.ID)
	if s.Status != "past_due" || s.LatestInvoice.Status != "open" || s.LatestInvoice.AttemptCount != 1 ||
		s.LatestInvoice.NextPaymentAttempt != periodEnd+2*day {
		t.Fatalf("after a failed renewal: %s, invoice %s attempts %d next %d", s.Status, s.LatestInvoice.Status,
			s.LatestInvoice.AttemptCount, s.LatestInvoice.NextPaymentAttempt)
	}
	// The payment method is fixed; the next retry pays and the subscription recovers.
	must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
		DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	advance(t, sc, clock, periodEnd+2*day+3600)
	s = subStatus(t, sc, sub.ID)
	if s.Status != "active" || s.LatestInvoice.Status != "paid" {
		t.Fatalf("after the retry with a good card: %s, invoice %s", s.Status, s.LatestInvoice.Status)
	}

	// Cancel at period end: it ends exactly then, with customer.subscription.deleted.
	must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}))
	end := s.CurrentPeriodEnd
	advance(t, sc, clock, end+day)
	s = subStatus(t, sc, sub.ID)
	if s.Status != "canceled" || s.EndedAt != end {
		t.Errorf("cancel at period end: %s ended at %d, want canceled at %d", s.Status, s.EndedAt, end)
	}
	deleted := false
	it := sc.Events.List(&stripe.EventListParams{Type: stripe.String("customer.subscription.deleted")})
	for it.Next() {
		deleted = true
	}
	if !deleted {
		t.Error("no customer.subscription.deleted event")
	}
}

func TestLifecycleDunningEnds(t *testing.T) {
	for _, final := range []string{"canceled", "unpaid"} {
		t.Run(final, func(t *testing.T) {
			sim, sc := newClient(t, Options{Dunning: DunningOptions{Retries: 3, Interval: 24 * time.Hour,
				Final: final}})
			t.Cleanup(sim.Close)
			clock, cus, pr := clockFixture(t, sc, "pm_card_visa")
			sub := must(subscribe(t, sc, cus, pr, nil))
			must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{
				InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
					DefaultPaymentMethod: stripe.String("pm_card_chargeDeclined")}}))
			// Renewal fails, then 3 retries one day apart fail.
			advance(t, sc, clock, sub.CurrentPeriodEnd+2*day)
			if s := subStatus(t, sc, sub.ID); s.Status != "past_due" {
				t.Fatalf("during dunning: %s", s.Status)
			}
			advance(t, sc, clock, sub.CurrentPeriodEnd+5*day)
			s := subStatus(t, sc, sub.ID)
			if string(s.Status) != final || s.LatestInvoice.AttemptCount != 4 {
				t.Errorf("after dunning: %s with %d attempts, want %s after 4", s.Status,
					s.LatestInvoice.AttemptCount, final)
			}
		})
	}
}

func TestLifecycleEventsInTimeOrder(t *testing.T) {
	sim, sc := newClient(t, Options{})
	t.Cleanup(sim.Close)
	clock, cus, pr := clockFixture(t, sc, "pm_card_visa")
	sub := must(subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) { p.TrialPeriodDays = stripe.Int64(5) }))
	// Two periods pass in one advance: trial_will_end, the trial end, then a renewal, in that order, each stamped
	// with the clock time it happened at.
	advance(t, sc, clock, clock.FrozenTime+5*day+31*day+3600)
	it := sc.Events.List(&stripe.EventListParams{})
	var evs []*stripe.Event
	for it.Next() {
		evs = append([]*stripe.Event{it.Event()}, evs...) // the list is newest first
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	var order []string
	stamps := map[string][]int64{}
	for _, ev := range evs {
		stamps[string(ev.Type)] = append(stamps[string(ev.Type)], ev.Created)
		switch ev.Type {
		case "customer.subscription.trial_will_end", "invoice.paid", "test_helpers.test_clock.ready":
			order = append(order, string(ev.Type))
		}
	}
	want := []string{"invoice.paid", "customer.subscription.trial_will_end", "invoice.paid", "invoice.paid",
		"test_helpers.test_clock.ready"}
	if !slices.Equal(order, want) {
		t.Errorf("events %v, want %v", order, want)
	}
	t0 := clock.FrozenTime
	if got := stamps["customer.subscription.trial_will_end"]; len(got) != 1 || got[0] != t0+2*day {
		t.Errorf("trial_will_end at %v, want %d (3 days before the trial ends)", got, t0+2*day)
	}
	if got := stamps["invoice.paid"]; len(got) != 3 || got[1] != t0+5*day || got[2] <= got[1] {
		t.Errorf("invoice.paid at %v: want the trial end at %d, then the renewal", got, t0+5*day)
	}
	s := subStatus(t, sc, sub.ID)
	if s.Status != "active" || s.CurrentPeriodStart <= clock.FrozenTime+5*day {
		t.Errorf("after two periods: %s period start %d", s.Status, s.CurrentPeriodStart)
	}
}

// eventTypes lists the types of the events recorded so far, oldest first.
func eventTypes(t *testing.T, sc *client.API) []string {
	t.Helper()
	it := sc.Events.List(&stripe.EventListParams{})
	var out []string
	for it.Next() {
		out = append([]string{string(it.Event().Type)}, out...)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return out
}

func TestLifecycleEveryCardOnRenewal(t *testing.T) {
	cases := []struct {
		pm      string
		status  stripe.SubscriptionStatus
		invoice stripe.InvoiceStatus
		event   string
	}{
		{"pm_card_visa", "active", "paid", "invoice.payment_succeeded"},
		{"pm_card_chargeDeclined", "past_due", "open", "invoice.payment_failed"},
		{"pm_card_chargeDeclinedInsufficientFunds", "past_due", "open", "invoice.payment_failed"},
		{"pm_card_chargeDeclinedExpiredCard", "past_due", "open", "invoice.payment_failed"},
		{"pm_card_authenticationRequired", "past_due", "open", "invoice.payment_action_required"},
	}
	for _, c := range cases {
		t.Run(c.pm, func(t *testing.T) {
			sim, sc := newClient(t, Options{})
			t.Cleanup(sim.Close)
			clock, cus, pr := clockFixture(t, sc, "pm_card_visa")
			sub := must(subscribe(t, sc, cus, pr, nil))
			must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{
				InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(c.pm)}}))
			advance(t, sc, clock, sub.CurrentPeriodEnd+3600)
			s := subStatus(t, sc, sub.ID)
			if s.Status != c.status || s.LatestInvoice.Status != c.invoice || s.LatestInvoice.BillingReason !=
				"subscription_cycle" {
				t.Errorf("renewal: %s, invoice %s (%s)", s.Status, s.LatestInvoice.Status, s.LatestInvoice.BillingReason)
			}
			pi := must(sc.PaymentIntents.Get(s.LatestInvoice.PaymentIntent.ID, nil))
			if c.status == "active" {
				if pi.Status != "succeeded" || pi.LastPaymentError != nil {
					t.Errorf("payment intent %s %+v", pi.Status, pi.LastPaymentError)
				}
			} else if pi.LastPaymentError == nil || pi.LastPaymentError.Code == "" {
				t.Errorf("payment intent of a failed renewal has no last_payment_error: %+v", pi)
			} else if c.pm == "pm_card_chargeDeclinedInsufficientFunds" &&
				pi.LastPaymentError.DeclineCode != "insufficient_funds" {
				t.Errorf("decline code %q", pi.LastPaymentError.DeclineCode)
			}
			found := false
			it := sc.Events.List(&stripe.EventListParams{Type: stripe.String(c.event)})
			for it.Next() {
				found = found || it.Event().Data.Object["billing_reason"] == "subscription_cycle"
			}
			if !found {
				t.Errorf("no %s event for the renewal invoice", c.event)
			}
		})
	}
}

func TestLifecycleTrialEndWithoutPaymentMethod(t *testing.T) {
	for _, behavior := range []string{"pause", "cancel", "create_invoice"} {
		t.Run(behavior, func(t *testing.T) {
			sim, sc := newClient(t, Options{})
			t.Cleanup(sim.Close)
			clock, cus, pr := clockFixture(t, sc, "")
			sub := must(subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) {
				p.TrialPeriodDays = stripe.Int64(3)
				p.TrialSettings = &stripe.SubscriptionTrialSettingsParams{
					EndBehavior: &stripe.SubscriptionTrialSettingsEndBehaviorParams{
						MissingPaymentMethod: stripe.String(behavior)}}
			}))
			advance(t, sc, clock, clock.FrozenTime+4*day)
			s := subStatus(t, sc, sub.ID)
			want := map[string]stripe.SubscriptionStatus{"pause": "paused", "cancel": "canceled",
				"create_invoice": "past_due"}[behavior]
			if s.Status != want {
				t.Fatalf("after the trial: %s, want %s", s.Status, want)
			}
			if behavior != "pause" {
				return
			}
			if !slices.Contains(eventTypes(t, sc), "customer.subscription.paused") {
				t.Error("no customer.subscription.paused event")
			}
			must(sc.Customers.Update(cus.ID, &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
				DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
			resumed := must(sc.Subscriptions.Resume(sub.ID, &stripe.SubscriptionResumeParams{
				BillingCycleAnchor: stripe.String("now")}))
			if resumed.Status != "active" {
				t.Errorf("resumed: %s", resumed.Status)
			}
			if !slices.Contains(eventTypes(t, sc), "customer.subscription.resumed") {
				t.Error("no customer.subscription.resumed event")
			}
		})
	}
}

func TestLifecycleSendInvoiceOverdue(t *testing.T) {
	sim, sc := newClient(t, Options{})
	t.Cleanup(sim.Close)
	clock, cus, pr := clockFixture(t, sc, "")
	sub := must(subscribe(t, sc, cus, pr, func(p *stripe.SubscriptionParams) {
		p.CollectionMethod = stripe.String("send_invoice")
		p.DaysUntilDue = stripe.Int64(10)
	}))
	if sub.Status != "active" || sub.LatestInvoice.Status != "open" {
		t.Fatalf("send_invoice: %s, invoice %s", sub.Status, sub.LatestInvoice.Status)
	}
	advance(t, sc, clock, clock.FrozenTime+9*day)
	if s := subStatus(t, sc, sub.ID); s.Status != "active" {
		t.Fatalf("before the due date: %s", s.Status)
	}
	advance(t, sc, clock, clock.FrozenTime+11*day)
	if s := subStatus(t, sc, sub.ID); s.Status != "past_due" {
		t.Errorf("after the due date: %s, want past_due", s.Status)
	}
}
