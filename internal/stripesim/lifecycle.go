package stripesim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The billing lifecycle in test mode: Stripe's test payment methods, invoices charged on creation and renewal,
// dunning, and test clocks that move subscriptions through time.

// Subscription statuses of the lifecycle.
const (
	statusIncomplete = "incomplete"
	statusPastDue    = "past_due"
	statusUnpaid     = "unpaid"
	statusPaused     = "paused"
)

// incompleteExpiry is how long a first invoice may stay unpaid before the subscription expires.
const incompleteExpiry = 23 * 3600

// charge is the outcome of charging a payment method.
type charge struct {
	ok             bool
	actionRequired bool
	code           string
	declineCode    string
	message        string
}

// chargeWith charges a payment method, behaving as Stripe's test payment methods do. Other pm_ IDs succeed.
func chargeWith(pm string) charge {
	switch pm {
	case "":
		return charge{code: "invoice_no_payment_method",
			message: "This customer has no attached payment source or default payment method."}
	case "pm_card_chargeDeclined":
		return charge{code: "card_declined", declineCode: "generic_decline", message: "Your card was declined."}
	case "pm_card_chargeDeclinedInsufficientFunds":
		return charge{code: "card_declined", declineCode: "insufficient_funds",
			message: "Your card has insufficient funds."}
	case "pm_card_chargeDeclinedExpiredCard":
		return charge{code: "expired_card", declineCode: "expired_card", message: "Your card has expired."}
	case "pm_card_authenticationRequired":
		return charge{actionRequired: true, code: "authentication_required",
			message: "Your card was declined. This transaction requires authentication."}
	}
	return charge{ok: true}
}

// paymentMethodFor is the subscription's default payment method, else its customer's.
func (s *store) paymentMethodFor(sub *subscription) string {
	if sub.DefaultPaymentMethod != nil {
		return *sub.DefaultPaymentMethod
	}
	if cu := s.customers[sub.Customer]; cu != nil && cu.DefaultPaymentMethod != nil {
		return *cu.DefaultPaymentMethod
	}
	return ""
}

// payInvoice attempts payment of an open invoice and records the outcome and its events.
func (c *call) payInvoice(in *invoice, sub *subscription) charge {
	if in.AmountDue == 0 {
		in.Status, in.Paid, in.AmountPaid, in.AmountRemaining = "paid", true, 0, 0
		in.PaidAt = &c.now
		c.emitInvoice("invoice.paid", in)
		c.emitInvoice("invoice.payment_succeeded", in)
		return charge{ok: true}
	}
	in.AttemptCount++
	pm := c.st.paymentMethodFor(sub)
	res := chargeWith(c.st.tokenOf(pm))
	c.recordPayment(in, pm, res)
	if res.ok {
		in.Status, in.Paid, in.AmountPaid, in.AmountRemaining = "paid", true, in.AmountDue, 0
		in.PaidAt = &c.now
		in.NextPaymentAttempt = nil
		c.emitInvoice("invoice.paid", in)
		c.emitInvoice("invoice.payment_succeeded", in)
		return res
	}
	in.Status, in.AmountRemaining = "open", in.AmountDue
	if res.actionRequired {
		c.emitInvoice("invoice.payment_action_required", in)
	}
	c.emitInvoice("invoice.payment_failed", in)
	return res
}

// paymentIntent is the simulator's record of an invoice's payment: its status and last error.
type paymentIntent struct {
	meta
	Invoice       string `json:"invoice"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	PaymentMethod string `json:"payment_method"`
	ErrorCode     string `json:"error_code"`
	DeclineCode   string `json:"decline_code"`
	ErrorMessage  string `json:"error_message"`
	// LatestCharge is the charge of the latest payment attempt.
	LatestCharge string `json:"latest_charge"`
}

func paymentIntentID(in *invoice) any {
	if in.PaymentIntent == nil {
		return nil
	}
	return in.PaymentIntent.ID
}

// recordPayment keeps the outcome of a payment attempt on the invoice's payment intent.
func (c *call) recordPayment(in *invoice, pm string, res charge) {
	pi := in.PaymentIntent
	if pi == nil {
		pi = &paymentIntent{meta: c.nextMeta("pi"), Invoice: in.ID, Amount: in.AmountDue, Currency: in.Currency}
		in.PaymentIntent = pi
		c.st.intents[pi.ID] = pi
	}
	pi.PaymentMethod, pi.ErrorCode, pi.DeclineCode, pi.ErrorMessage = pm, res.code, res.declineCode, res.message
	c.recordCharge(in, pi, pm, res)
	switch {
	case res.ok:
		pi.Status, pi.ErrorCode, pi.DeclineCode, pi.ErrorMessage = "succeeded", "", "", ""
	case res.actionRequired:
		pi.Status = "requires_action"
	default:
		pi.Status = "requires_payment_method"
	}
}

func (s *store) renderPaymentIntent(pi *paymentIntent) obj {
	var lastErr any
	if pi.ErrorCode != "" {
		e := obj{"type": typeCard, "code": pi.ErrorCode, "message": pi.ErrorMessage}
		if pi.DeclineCode != "" {
			e["decline_code"] = pi.DeclineCode
		}
		lastErr = e
	}
	var pm any
	if pi.PaymentMethod != "" {
		pm = pi.PaymentMethod
	}
	var cust any
	if in := s.invoices[pi.Invoice]; in != nil {
		cust = in.Customer
	}
	var next any
	if pi.Status == "requires_action" {
		next = obj{"type": "use_stripe_sdk", "use_stripe_sdk": obj{}}
	}
	received := int64(0)
	if pi.Status == "succeeded" {
		received = pi.Amount
	}
	return obj{"id": pi.ID, "object": "payment_intent", "amount": pi.Amount, "amount_capturable": 0,
		"amount_details": obj{"tip": obj{}}, "amount_received": received, "application": nil,
		"application_fee_amount": nil, "automatic_payment_methods": nil, "canceled_at": nil,
		"cancellation_reason": nil, "capture_method": "automatic",
		"client_secret":       pi.ID + "_secret_" + strings.ToLower(pi.ID[len(pi.ID)-10:]),
		"confirmation_method": "automatic", "created": pi.Created, "currency": pi.Currency, "customer": cust,
		"description": s.paymentDescription(pi.Invoice), "invoice": pi.Invoice, "last_payment_error": lastErr,
		"latest_charge": nilIfEmpty(pi.LatestCharge), "livemode": s.live, "metadata": metadataJSON(pi.Metadata),
		"next_action": next, "on_behalf_of": nil, "payment_method": pm,
		"payment_method_configuration_details": nil,
		"payment_method_options": obj{"card": obj{"installments": nil, "mandate_options": nil, "network": nil,
			"request_three_d_secure": "automatic"}},
		"payment_method_types": []string{"card"}, "processing": nil, "receipt_email": nil, "review": nil,
		"setup_future_usage": nil, "shipping": nil, "statement_descriptor": nil,
		"statement_descriptor_suffix": nil, "status": pi.Status, "transfer_data": nil, "transfer_group": nil}
}

func (c *call) getPaymentIntent() (any, *apiError) {
	c.f.unknown(c.form, "client_secret")
	pi, ok := c.st.intents[c.id]
	if !ok {
		return nil, noSuch("payment_intent", "id", c.id)
	}
	return c.st.renderPaymentIntent(pi), nil
}

func (c *call) emitInvoice(typ string, in *invoice) { c.emit(typ, c.st.renderInvoice(in), nil) }

// setStatus changes a subscription's status with its event.
func (c *call) setStatus(sub *subscription, status string) {
	if sub.Status == status {
		return
	}
	before := c.st.renderSubscription(sub, nil)
	sub.Status = status
	c.emitUpdate("customer.subscription.updated", before, c.st.renderSubscription(sub, nil))
}

// cardError is the 402 of a payment that failed under payment_behavior=error_if_incomplete.
func cardError(res charge) *apiError {
	return &apiError{Status: http.StatusPaymentRequired, Type: typeCard, Code: res.code,
		DeclineCode: res.declineCode, Message: res.message}
}

// DunningOptions shape what happens after a failed renewal.
type DunningOptions struct {
	// Retries is how many times a failed renewal is retried (default 3).
	Retries int
	// Interval is the time between retries (default 2 days).
	Interval time.Duration
	// Final is the status after the last failed retry: "canceled" (default) or "unpaid".
	Final string
}

func (o DunningOptions) withDefaults() DunningOptions {
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Interval == 0 {
		o.Interval = 48 * time.Hour
	}
	if o.Final == "" {
		o.Final = statusCanceled
	}
	return o
}

// renew starts the next period of an active or past-due subscription, or ends it at the period end. At the end of
// a trial without a payment method, trial_settings.end_behavior.missing_payment_method decides.
func (c *call) renew(sub *subscription) {
	if sub.CancelAtPeriodEnd {
		c.cancelNow(sub)
		return
	}
	if sub.Status == statusTrialing && c.st.paymentMethodFor(sub) == "" {
		switch sub.TrialEndBehavior {
		case "cancel":
			c.cancelNow(sub)
			return
		case "pause":
			c.setStatus(sub, statusPaused)
			c.emit("customer.subscription.paused", c.st.renderSubscription(sub, nil), nil)
			return
		}
	}
	first := c.st.prices[sub.Items[0].Price].Recurring
	before := c.st.renderSubscription(sub, nil)
	sub.CurrentPeriodStart = sub.CurrentPeriodEnd
	sub.CurrentPeriodEnd = addPeriod(sub.CurrentPeriodStart, first.Interval, first.IntervalCount)
	c.emitUpdate("customer.subscription.updated", before, c.st.renderSubscription(sub, nil))
	c.bill(sub, "subscription_cycle")
}

// bill invoices the current period after a trial or on renewal, and starts dunning when the payment fails.
func (c *call) bill(sub *subscription, reason string) {
	in := c.invoiceFor(sub, reason)
	if sub.CollectionMethod == "send_invoice" {
		c.setStatus(sub, statusActive)
		return
	}
	if c.payInvoice(in, sub).ok {
		c.paid(sub)
		return
	}
	next := c.now + int64(c.sim.dunning().Interval.Seconds())
	sub.Retries, sub.NextRetry, in.NextPaymentAttempt = 0, &next, &next
	c.setStatus(sub, statusPastDue)
}

// paid ends dunning: the latest invoice was paid, so the subscription is active.
func (c *call) paid(sub *subscription) {
	sub.Retries, sub.NextRetry = 0, nil
	c.setStatus(sub, statusActive)
}

// retry retries the latest invoice of a past-due subscription.
func (c *call) retry(sub *subscription) {
	in := c.st.invoices[deref(sub.LatestInvoice)]
	if in == nil || in.Paid {
		sub.NextRetry = nil
		return
	}
	if c.payInvoice(in, sub).ok {
		c.paid(sub)
		return
	}
	d := c.sim.dunning()
	sub.Retries++
	if sub.Retries >= d.Retries {
		sub.NextRetry, in.NextPaymentAttempt = nil, nil
		if d.Final == statusUnpaid {
			c.setStatus(sub, statusUnpaid)
		} else {
			sub.CancelReason = "payment_failed"
			c.cancelNow(sub)
		}
		return
	}
	next := c.now + int64(d.Interval.Seconds())
	sub.NextRetry, in.NextPaymentAttempt = &next, &next
}

// resumeSubscription is POST /v1/subscriptions/{id}/resume: a paused subscription starts a new period now and is
// billed for it.
func (c *call) resumeSubscription() (any, *apiError) {
	c.f.unknown(c.form, "billing_cycle_anchor", "proration_behavior", "proration_date")
	c.f.enum(c.form, "billing_cycle_anchor", "now", "unchanged")
	if c.f.err != nil {
		return nil, c.f.err
	}
	sub, err := c.subscription()
	if err != nil {
		return nil, err
	}
	if sub.Status != statusPaused {
		return nil, invalidRequest("Only a paused subscription can be resumed.")
	}
	c.now = c.st.clockTime(sub.Customer, c.now)
	first := c.st.prices[sub.Items[0].Price].Recurring
	sub.CurrentPeriodStart, sub.BillingCycleAnchor = c.now, c.now
	sub.CurrentPeriodEnd = addPeriod(c.now, first.Interval, first.IntervalCount)
	c.bill(sub, "subscription_cycle")
	c.emit("customer.subscription.resumed", c.st.renderSubscription(sub, nil), nil)
	return c.st.renderSubscription(sub, c.expand), nil
}

// payInvoiceNow is POST /v1/invoices/{id}/pay: an immediate attempt, which recovers a past-due subscription.
func (c *call) payInvoiceNow() (any, *apiError) {
	c.f.unknown(c.form, "payment_method", "off_session")
	in, ok := c.st.invoices[c.id]
	if !ok {
		return nil, noSuch("invoice", "id", c.id)
	}
	if in.Paid {
		return nil, invalidRequest("Invoice is already paid")
	}
	sub := c.st.subscriptions[in.Subscription]
	if sub == nil {
		return nil, invalidRequest("The invoice has no subscription")
	}
	c.now = c.st.clockTime(sub.Customer, c.now)
	if pm, ok := c.f.str(c.form, "payment_method"); ok {
		sub.DefaultPaymentMethod = &pm
	}
	res := c.payInvoice(in, sub)
	if !res.ok {
		return nil, cardError(res)
	}
	c.paid(sub)
	return c.st.renderInvoice(in), nil
}

// testClock is a test clock: objects attached to it live at its frozen time.
type testClock struct {
	meta
	Name       string `json:"name"`
	FrozenTime int64  `json:"frozen_time"`
	Status     string `json:"status"`
	Deleted    bool   `json:"deleted"`
}

func (s *store) renderClock(tc *testClock) obj {
	if tc.Deleted {
		return obj{"id": tc.ID, "object": "test_helpers.test_clock", "deleted": true}
	}
	return obj{"id": tc.ID, "object": "test_helpers.test_clock", "created": tc.Created,
		"deletes_after": tc.FrozenTime + 30*86400, "frozen_time": tc.FrozenTime, "livemode": false,
		"name": nilIfEmpty(tc.Name), "status": tc.Status}
}

// clockTime is the time objects of a customer live at: its test clock's, else now.
func (s *store) clockTime(customerID string, now int64) int64 {
	if cu := s.customers[customerID]; cu != nil && cu.TestClock != nil {
		if tc := s.clocks[*cu.TestClock]; tc != nil {
			return tc.FrozenTime
		}
	}
	return now
}

func (c *call) createClock() (any, *apiError) {
	if c.st.live {
		return nil, invalidRequest("Test clocks are only available in test mode.")
	}
	c.f.unknown(c.form, "frozen_time", "name")
	frozen, ok := c.f.integer(c.form, "frozen_time")
	if !ok && c.f.err == nil {
		return nil, missingParam("frozen_time")
	}
	name, _ := c.f.str(c.form, "name")
	if c.f.err != nil {
		return nil, c.f.err
	}
	tc := &testClock{meta: c.nextMeta("clock"), Name: name, FrozenTime: frozen, Status: "ready"}
	c.st.clocks[tc.ID] = tc
	out := c.st.renderClock(tc)
	c.emit("test_helpers.test_clock.created", out, nil)
	return out, nil
}

func (c *call) clock() (*testClock, *apiError) {
	tc, ok := c.st.clocks[c.id]
	if !ok || tc.Deleted {
		return nil, noSuch("test_helpers.test_clock", "id", c.id)
	}
	return tc, nil
}

func (c *call) getClock() (any, *apiError) {
	c.f.unknown(c.form)
	tc, err := c.clock()
	if err != nil {
		return nil, err
	}
	return c.st.renderClock(tc), nil
}

func (c *call) deleteClock() (any, *apiError) {
	c.f.unknown(c.form)
	tc, err := c.clock()
	if err != nil {
		return nil, err
	}
	c.emit("test_helpers.test_clock.deleted", c.st.renderClock(tc), nil)
	tc.Deleted = true
	return c.st.renderClock(tc), nil
}

// advanceClock starts moving a clock to frozen_time: it answers at once with status advancing, and a background
// pass applies, in time order, every trial end, renewal, retry and expiry falling in the interval, then sets it
// ready.
func (c *call) advanceClock() (any, *apiError) {
	c.f.unknown(c.form, "frozen_time")
	tc, err := c.clock()
	if err != nil {
		return nil, err
	}
	target, ok := c.f.integer(c.form, "frozen_time")
	switch {
	case c.f.err != nil:
		return nil, c.f.err
	case !ok:
		return nil, missingParam("frozen_time")
	case tc.Status != "ready":
		return nil, invalidRequest("The test clock is already advancing.")
	case target <= tc.FrozenTime:
		return nil, invalidParam("frozen_time", "The frozen time must be after the clock's current frozen time.")
	}
	tc.Status = "advancing"
	out := c.st.renderClock(tc)
	c.emit("test_helpers.test_clock.advancing", out, nil)
	st := c.st
	go c.sim.advance(st, tc, target)
	return out, nil
}

// advance runs in the background: a short pause lets a client see the clock advancing, as on Stripe.
func (s *Sim) advance(st *store, tc *testClock, target int64) {
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &call{sim: s, st: st}
	for {
		at, act := s.nextTransition(st, tc.ID)
		if act == nil || at > target {
			break
		}
		c.now = at
		tc.FrozenTime = at
		act(c)
	}
	c.now, tc.FrozenTime, tc.Status = target, target, "ready"
	c.emit("test_helpers.test_clock.ready", st.renderClock(tc), nil)
	s.enqueue(st, c.commitEvents("", ""))
}

// nextTransition finds the earliest pending lifecycle step of the clock's subscriptions.
func (s *Sim) nextTransition(st *store, clockID string) (int64, func(*call)) {
	var best int64
	var act func(*call)
	for _, sub := range st.subscriptions {
		if st.clockOf(sub) != clockID {
			continue
		}
		if at, f := st.transition(sub); f != nil && (act == nil || at < best) {
			best, act = at, f
		}
	}
	return best, act
}

// clockOf is the ID of the test clock a subscription's customer is attached to, or "".
func (st *store) clockOf(sub *subscription) string {
	if cu := st.customers[sub.Customer]; cu != nil && cu.TestClock != nil {
		return *cu.TestClock
	}
	return ""
}

// transition is a subscription's earliest pending lifecycle step (trial end, renewal, retry, due date, expiry)
// and when it happens; nil when none is pending.
func (st *store) transition(sub *subscription) (int64, func(*call)) {
	var best int64
	var act func(*call)
	consider := func(at int64, f func(*call)) {
		if act == nil || at < best {
			best, act = at, f
		}
	}
	switch sub.Status {
	case statusTrialing:
		if !sub.TrialWillEndSent && sub.TrialEnd != nil && *sub.TrialEnd-3*86400 > sub.StartDate {
			consider(*sub.TrialEnd-3*86400, func(c *call) {
				sub.TrialWillEndSent = true
				c.emit("customer.subscription.trial_will_end", c.st.renderSubscription(sub, nil), nil)
			})
		}
		consider(sub.CurrentPeriodEnd, func(c *call) { c.renew(sub) })
	case statusActive, statusPastDue, statusUnpaid:
		consider(sub.CurrentPeriodEnd, func(c *call) { c.renew(sub) })
		if sub.Status == statusPastDue && sub.NextRetry != nil {
			consider(*sub.NextRetry, func(c *call) { c.retry(sub) })
		}
		// A send_invoice invoice unpaid past its due date makes the subscription past due.
		if in := st.invoices[deref(sub.LatestInvoice)]; sub.Status == statusActive &&
			sub.CollectionMethod == "send_invoice" && in != nil && !in.Paid && in.DueDate != nil {
			consider(*in.DueDate, func(c *call) { c.setStatus(sub, statusPastDue) })
		}
	case statusIncomplete:
		consider(sub.Created+incompleteExpiry, func(c *call) {
			if in := c.st.invoices[deref(sub.LatestInvoice)]; in != nil && !in.Paid {
				now := c.now
				in.Status, in.VoidedAt = "void", &now
			}
			c.setStatus(sub, statusIncompleteExpired)
			now := c.now
			sub.EndedAt = &now
		})
	}
	return best, act
}

// paymentDescription is the description Stripe gives the payment of a subscription invoice.
func (s *store) paymentDescription(invoiceID string) string {
	if in := s.invoices[invoiceID]; in != nil && in.BillingReason != "subscription_create" {
		return "Subscription update"
	}
	return "Subscription creation"
}

// AccountTime is the outcome of AdvanceAccountTime.
type AccountTime struct {
	// Account and FrozenTime say which account moved, and to when (Unix seconds).
	Account    string `json:"account"`
	FrozenTime int64  `json:"frozen_time"`
	// Steps counts the lifecycle steps applied (renewals, retries, trial ends, expiries), Events the events emitted.
	Steps  int `json:"steps"`
	Events int `json:"events"`
}

// AdvanceAccountTime moves the time of a test-mode account's objects that are not on a test clock to frozenTime,
// and applies, as advancing a test clock does, every trial end, renewal, payment retry and expiry of their
// subscriptions falling in the interval, with their events. Stripe's test clocks hold at most three customers, so
// this is how many subscriptions on one billing anchor renew at once (a renewal day). Webhooks are delivered as
// for any other event. It answers when the steps are applied (the simulator is busy meanwhile).
func (s *Sim) AdvanceAccountTime(account string, frozenTime int64) (AccountTime, error) {
	if account == "" {
		account = DefaultAccount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeFor(sessionKey{account: account})
	now := st.accountNow(s.opts.Now())
	if frozenTime <= now {
		return AccountTime{}, &AdminError{Status: http.StatusBadRequest,
			Message: fmt.Sprintf("frozen_time %d is not after the account's time %d", frozenTime, now)}
	}
	out := AccountTime{Account: account, FrozenTime: frozenTime}
	c := &call{sim: s, st: st}
	type step struct {
		at  int64
		id  string
		act func(*call)
	}
	// Each pass applies the earliest pending step of every subscription, in time order; a step may schedule
	// another (a failed renewal's retry), which a later pass applies, so each subscription's steps keep their order.
	for {
		var due []step
		for _, sub := range st.subscriptions {
			if st.clockOf(sub) != "" {
				continue
			}
			if at, act := st.transition(sub); act != nil && at <= frozenTime {
				due = append(due, step{at: at, id: sub.ID, act: act})
			}
		}
		if len(due) == 0 {
			break
		}
		sort.Slice(due, func(i, j int) bool {
			if due[i].at != due[j].at {
				return due[i].at < due[j].at
			}
			return due[i].id < due[j].id
		})
		for _, d := range due {
			c.now = d.at
			d.act(c)
		}
		out.Steps += len(due)
	}
	st.timeShift += frozenTime - now
	events := c.commitEvents("", "")
	out.Events = len(events)
	s.enqueue(st, events)
	return out, nil
}
