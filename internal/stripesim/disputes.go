package stripesim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Charges and disputes. Every payment attempt with a payment method creates a charge (succeeded or failed) and
// becomes its payment intent's latest_charge. A card holder disputes a succeeded charge; the admin API plays the card
// holder and the bank (POST /_sim/disputes, POST /_sim/disputes/{id}/close), and the dispute's events go through
// the same event log and signed webhook delivery as every other event. As on Stripe, a dispute names its charge and
// payment intent, not the customer: the customer is on the payment intent and the charge.

// simCharge is a charge (named so because charge is the outcome of charging a payment method).
type simCharge struct {
	meta
	PaymentIntent  string `json:"payment_intent"`
	Invoice        string `json:"invoice"`
	Customer       string `json:"customer"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	PaymentMethod  string `json:"payment_method"`
	Status         string `json:"status"`
	FailureCode    string `json:"failure_code"`
	FailureMessage string `json:"failure_message"`
	// Dispute is the ID of the charge's dispute (a charge is disputed at most once).
	Dispute string `json:"dispute"`
}

// dispute is a dispute of a charge.
type dispute struct {
	meta
	Charge        string `json:"charge"`
	PaymentIntent string `json:"payment_intent"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	Reason        string `json:"reason"`
	Status        string `json:"status"`
}

// Dispute statuses.
const (
	disputeNeedsResponse = "needs_response"
	disputeWon           = "won"
	disputeLost          = "lost"
)

// disputeReasons are the reasons Stripe gives a dispute.
var disputeReasons = []string{"bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
	"debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds",
	"product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized"}

// recordCharge records a payment attempt as a charge on the invoice's payment intent. An attempt that needs the
// customer to authenticate first, or has no payment method, makes no charge.
func (c *call) recordCharge(in *invoice, pi *paymentIntent, pm string, res charge) {
	if pm == "" || res.actionRequired {
		return
	}
	ch := &simCharge{meta: c.nextMeta("ch"), PaymentIntent: pi.ID, Invoice: in.ID, Customer: in.Customer,
		Amount: pi.Amount, Currency: pi.Currency, PaymentMethod: pm, Status: "succeeded"}
	if !res.ok {
		ch.Status, ch.FailureCode, ch.FailureMessage = "failed", res.code, res.message
	}
	c.st.charges[ch.ID] = ch
	pi.LatestCharge = ch.ID
}

func (s *store) renderCharge(ch *simCharge) obj {
	ok := ch.Status == "succeeded"
	captured := int64(0)
	var txn any
	outcome := obj{"network_status": "approved_by_network", "reason": nil, "risk_level": "normal",
		"risk_score": 32, "seller_message": "Payment complete.", "type": "authorized"}
	if ok {
		captured = ch.Amount
		txn = "txn_" + strings.TrimPrefix(ch.ID, "ch_")
	} else {
		outcome = obj{"network_status": "declined_by_network", "reason": nilIfEmpty(ch.FailureCode),
			"risk_level": "normal", "risk_score": 32, "seller_message": "The bank did not return any further details " +
				"with this decline.", "type": "issuer_declined"}
	}
	return obj{"id": ch.ID, "object": "charge", "amount": ch.Amount, "amount_captured": captured,
		"amount_refunded": 0, "application": nil, "application_fee": nil, "application_fee_amount": nil,
		"balance_transaction": txn,
		"billing_details": obj{"address": obj{"city": nil, "country": nil, "line1": nil, "line2": nil,
			"postal_code": nil, "state": nil}, "email": nil, "name": nil, "phone": nil},
		"calculated_statement_descriptor": "STRIPE SIMULATOR", "captured": ok, "created": ch.Created,
		"currency": ch.Currency, "customer": nilIfEmpty(ch.Customer), "description": s.paymentDescription(ch.Invoice),
		"disputed": ch.Dispute != "", "failure_balance_transaction": nil,
		"failure_code": nilIfEmpty(ch.FailureCode), "failure_message": nilIfEmpty(ch.FailureMessage),
		"fraud_details": obj{}, "invoice": nilIfEmpty(ch.Invoice), "livemode": s.live,
		"metadata": metadataJSON(ch.Metadata), "on_behalf_of": nil, "outcome": outcome, "paid": ok,
		"payment_intent": nilIfEmpty(ch.PaymentIntent), "payment_method": ch.PaymentMethod,
		"payment_method_details": obj{"card": s.chargeCard(ch.PaymentMethod), "type": "card"},
		"receipt_email":          nil, "receipt_number": nil,
		"receipt_url": "https://pay.stripe.com/receipts/sim/" + ch.ID, "refunded": false,
		"refunds": obj{"object": "list", "data": []any{}, "has_more": false,
			"url": "/v1/charges/" + ch.ID + "/refunds"},
		"review": nil, "shipping": nil, "source_transfer": nil, "statement_descriptor": nil,
		"statement_descriptor_suffix": nil, "status": ch.Status, "transfer_data": nil, "transfer_group": nil}
}

// chargeCard is payment_method_details.card of a charge made with a card payment method.
func (s *store) chargeCard(pm string) obj {
	card := cardFor(s.tokenOf(pm))
	return obj{"amount_authorized": nil, "brand": card.Brand,
		"checks":  obj{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": "pass"},
		"country": "US", "exp_month": card.ExpMonth, "exp_year": card.ExpYear,
		"extended_authorization": obj{"status": "disabled"}, "fingerprint": card.Fingerprint,
		"funding": card.Funding, "incremental_authorization": obj{"status": "unavailable"},
		"installments": nil, "last4": card.Last4, "mandate": nil, "multicapture": obj{"status": "unavailable"},
		"network": card.Brand, "network_token": obj{"used": false},
		"overcapture": obj{"maximum_amount_capturable": 0, "status": "unavailable"}, "three_d_secure": nil,
		"wallet": nil}
}

// disputeEvidence is a dispute's evidence before the merchant submits any.
func disputeEvidence() obj {
	out := obj{}
	for _, k := range []string{"access_activity_log", "billing_address", "cancellation_policy",
		"cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
		"customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
		"duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
		"product_description", "receipt", "refund_policy", "refund_policy_disclosure",
		"refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
		"shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
		"uncategorized_file", "uncategorized_text"} {
		out[k] = nil
	}
	return out
}

func (s *store) renderDispute(d *dispute) obj {
	brand := "visa"
	if ch := s.charges[d.Charge]; ch != nil {
		brand = cardFor(s.tokenOf(ch.PaymentMethod)).Brand
	}
	return obj{"id": d.ID, "object": "dispute", "amount": d.Amount, "balance_transactions": []any{},
		"charge": d.Charge, "created": d.Created, "currency": d.Currency, "evidence": disputeEvidence(),
		"evidence_details": obj{"due_by": d.Created + 7*86400, "has_evidence": false, "past_due": false,
			"submission_count": 0},
		"is_charge_refundable": false, "livemode": s.live, "metadata": metadataJSON(d.Metadata),
		"payment_intent": nilIfEmpty(d.PaymentIntent),
		"payment_method_details": obj{"card": obj{"brand": brand, "network_reason_code": "10.4"},
			"type": "card"},
		"reason": d.Reason, "status": d.Status}
}

func (c *call) getCharge() (any, *apiError) {
	c.f.unknown(c.form)
	ch, ok := c.st.charges[c.id]
	if !ok {
		return nil, noSuch("charge", "id", c.id)
	}
	return c.st.renderCharge(ch), nil
}

func (c *call) getDispute() (any, *apiError) {
	c.f.unknown(c.form)
	d, ok := c.st.disputes[c.id]
	if !ok {
		return nil, noSuch("dispute", "id", c.id)
	}
	return c.st.renderDispute(d), nil
}

// DisputeRequest opens a dispute (POST /_sim/disputes): name the succeeded charge by its ID, its payment intent or
// its invoice.
type DisputeRequest struct {
	Charge        string `json:"charge,omitempty"`
	PaymentIntent string `json:"payment_intent,omitempty"`
	Invoice       string `json:"invoice,omitempty"`
	// Reason is one of Stripe's dispute reasons (default fraudulent).
	Reason string `json:"reason,omitempty"`
	// Amount disputed (default, and at most, the charge's amount).
	Amount int64 `json:"amount,omitempty"`
}

// AdminError is a refused admin request, with the HTTP status to answer.
type AdminError struct {
	Status  int
	Message string
}

func (e *AdminError) Error() string { return e.Message }

// findCharge finds the charge a dispute request names, in any account and mode.
func (s *Sim) findCharge(r DisputeRequest) (*store, *simCharge, error) {
	named := 0
	for _, id := range []string{r.Charge, r.PaymentIntent, r.Invoice} {
		if id != "" {
			named++
		}
	}
	if named != 1 {
		return nil, nil, &AdminError{http.StatusBadRequest, "name exactly one of charge, payment_intent and invoice"}
	}
	for _, st := range s.stores {
		id := r.Charge
		if pi := st.intents[r.PaymentIntent]; pi != nil {
			id = pi.LatestCharge
		}
		if in := st.invoices[r.Invoice]; in != nil && in.PaymentIntent != nil {
			id = in.PaymentIntent.LatestCharge
		}
		if ch := st.charges[id]; ch != nil {
			return st, ch, nil
		}
		if _, ok := st.intents[r.PaymentIntent]; ok {
			return nil, nil, &AdminError{http.StatusBadRequest, "payment intent " + r.PaymentIntent + " has no charge"}
		}
		if _, ok := st.invoices[r.Invoice]; ok {
			return nil, nil, &AdminError{http.StatusBadRequest, "invoice " + r.Invoice + " has no charge"}
		}
	}
	return nil, nil, &AdminError{http.StatusNotFound, fmt.Sprintf("no such charge, payment intent or invoice: %s%s%s",
		r.Charge, r.PaymentIntent, r.Invoice)}
}

// OpenDispute disputes a succeeded charge, as a card holder does, and emits charge.dispute.created. It returns the
// dispute as the API renders it.
func (s *Sim) OpenDispute(r DisputeRequest) (map[string]any, error) {
	if r.Reason == "" {
		r.Reason = "fraudulent"
	}
	if !slices.Contains(disputeReasons, r.Reason) {
		return nil, &AdminError{http.StatusBadRequest, "unknown dispute reason " + r.Reason}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ch, err := s.findCharge(r)
	if err != nil {
		return nil, err
	}
	switch {
	case ch.Status != "succeeded":
		return nil, &AdminError{http.StatusBadRequest, "charge " + ch.ID + " did not succeed; only a paid charge " +
			"can be disputed"}
	case ch.Dispute != "":
		return nil, &AdminError{http.StatusBadRequest, "charge " + ch.ID + " is already disputed (" + ch.Dispute + ")"}
	case r.Amount < 0 || r.Amount > ch.Amount:
		return nil, &AdminError{http.StatusBadRequest, fmt.Sprintf("amount must be between 1 and the charge's %d",
			ch.Amount)}
	}
	if r.Amount == 0 {
		r.Amount = ch.Amount
	}
	c := &call{sim: s, st: st, now: st.clockTime(ch.Customer, st.accountNow(s.opts.Now()))}
	d := &dispute{meta: c.nextMeta("dp"), Charge: ch.ID, PaymentIntent: ch.PaymentIntent, Amount: r.Amount,
		Currency: ch.Currency, Reason: r.Reason, Status: disputeNeedsResponse}
	st.disputes[d.ID] = d
	ch.Dispute = d.ID
	out := st.renderDispute(d)
	c.emit("charge.dispute.created", out, nil)
	s.enqueue(st, c.commitEvents("", ""))
	return out, nil
}

// CloseDispute closes an open dispute with status won or lost, as the card network decides, and emits
// charge.dispute.closed.
func (s *Sim) CloseDispute(id, status string) (map[string]any, error) {
	if status != disputeWon && status != disputeLost {
		return nil, &AdminError{http.StatusBadRequest, "status must be won or lost"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stores {
		d := st.disputes[id]
		if d == nil {
			continue
		}
		if d.Status == disputeWon || d.Status == disputeLost {
			return nil, &AdminError{http.StatusBadRequest, "dispute " + id + " is already closed (" + d.Status + ")"}
		}
		customer := ""
		if ch := st.charges[d.Charge]; ch != nil {
			customer = ch.Customer
		}
		c := &call{sim: s, st: st, now: st.clockTime(customer, st.accountNow(s.opts.Now()))}
		before := st.renderDispute(d)
		d.Status = status
		out := st.renderDispute(d)
		c.emit("charge.dispute.closed", out, before)
		s.enqueue(st, c.commitEvents("", ""))
		return out, nil
	}
	return nil, &AdminError{http.StatusNotFound, "no such dispute: " + id}
}
