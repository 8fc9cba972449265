package stripesim

import (
	"maps"
	"strconv"
)

// The objects the simulator keeps. They are stored as Go structs and rendered as API version 2023-10-16 renders
// them, so they decode into stripe-go v76's structs.

// meta is what every object has.
type meta struct {
	ID       string            `json:"id"`
	Created  int64             `json:"created"`
	Seq      int64             `json:"seq"` // creation order, for lists within one second
	Metadata map[string]string `json:"metadata"`
}

type address struct {
	Line1      *string `json:"line1"`
	Line2      *string `json:"line2"`
	City       *string `json:"city"`
	State      *string `json:"state"`
	PostalCode *string `json:"postal_code"`
	Country    *string `json:"country"`
}

type customer struct {
	meta
	Email                *string  `json:"email"`
	Name                 *string  `json:"name"`
	Description          *string  `json:"description"`
	Phone                *string  `json:"phone"`
	Address              *address `json:"address"`
	DefaultPaymentMethod *string  `json:"default_payment_method"`
	TestClock            *string  `json:"test_clock"`
	Deleted              bool     `json:"deleted"`
}

type product struct {
	meta
	Name                string  `json:"name"`
	Description         *string `json:"description"`
	Active              bool    `json:"active"`
	DefaultPrice        *string `json:"default_price"`
	TaxCode             *string `json:"tax_code"`
	UnitLabel           *string `json:"unit_label"`
	StatementDescriptor *string `json:"statement_descriptor"`
	Updated             int64   `json:"updated"`
	Deleted             bool    `json:"deleted"`
}

type recurring struct {
	Interval      string `json:"interval"`
	IntervalCount int64  `json:"interval_count"`
	UsageType     string `json:"usage_type"`
}

type price struct {
	meta
	Product     string     `json:"product"`
	Currency    string     `json:"currency"`
	UnitAmount  int64      `json:"unit_amount"`
	Recurring   *recurring `json:"recurring"`
	LookupKey   *string    `json:"lookup_key"`
	Nickname    *string    `json:"nickname"`
	TaxBehavior string     `json:"tax_behavior"`
	Active      bool       `json:"active"`
}

type subscriptionItem struct {
	meta
	Price    string `json:"price"`
	Quantity int64  `json:"quantity"`
}

type subscription struct {
	meta
	Customer             string              `json:"customer"`
	Items                []*subscriptionItem `json:"items"`
	Status               string              `json:"status"`
	CollectionMethod     string              `json:"collection_method"`
	DaysUntilDue         *int64              `json:"days_until_due"`
	DefaultPaymentMethod *string             `json:"default_payment_method"`
	CancelAtPeriodEnd    bool                `json:"cancel_at_period_end"`
	CanceledAt           *int64              `json:"canceled_at"`
	EndedAt              *int64              `json:"ended_at"`
	CurrentPeriodStart   int64               `json:"current_period_start"`
	CurrentPeriodEnd     int64               `json:"current_period_end"`
	BillingCycleAnchor   int64               `json:"billing_cycle_anchor"`
	StartDate            int64               `json:"start_date"`
	TrialStart           *int64              `json:"trial_start"`
	TrialEnd             *int64              `json:"trial_end"`
	LatestInvoice        *string             `json:"latest_invoice"`
	Currency             string              `json:"currency"`
	// Dunning state: the next retry of a failed renewal, and how many retries failed.
	NextRetry        *int64 `json:"next_retry"`
	Retries          int    `json:"retries"`
	TrialWillEndSent bool   `json:"trial_will_end_sent"`
	// TrialEndBehavior is trial_settings.end_behavior.missing_payment_method: create_invoice, cancel or pause.
	TrialEndBehavior string `json:"trial_end_behavior"`
}

type invoice struct {
	meta
	Customer         string  `json:"customer"`
	Subscription     string  `json:"subscription"`
	Status           string  `json:"status"`
	Currency         string  `json:"currency"`
	AmountDue        int64   `json:"amount_due"`
	AmountPaid       int64   `json:"amount_paid"`
	AmountRemaining  int64   `json:"amount_remaining"`
	CollectionMethod string  `json:"collection_method"`
	HostedInvoiceURL string  `json:"hosted_invoice_url"`
	PeriodStart      int64   `json:"period_start"`
	PeriodEnd        int64   `json:"period_end"`
	Paid             bool    `json:"paid"`
	BillingReason    string  `json:"billing_reason"`
	DueDate          *int64  `json:"due_date"`
	PaymentMethod    *string `json:"payment_method"`
	// PaymentIntent is the payment intent that collects the invoice, created at the first payment attempt.
	PaymentIntent *paymentIntent `json:"payment_intent"`
	AttemptCount  int64          `json:"attempt_count"`
	// NextPaymentAttempt is when dunning retries the payment.
	NextPaymentAttempt *int64 `json:"next_payment_attempt"`
	// SubscriptionDetails holds the subscription's metadata as it was when the invoice was created.
	SubscriptionDetails *invoiceSubscriptionDetails `json:"subscription_details"`
}

type invoiceSubscriptionDetails struct {
	Metadata map[string]string `json:"metadata"`
}

// obj is a rendered JSON object.
type obj = map[string]any

func metadataJSON(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func (s *store) renderCustomer(c *customer) obj {
	if c.Deleted {
		return obj{"id": c.ID, "object": "customer", "deleted": true}
	}
	var addr any
	if c.Address != nil {
		addr = obj{"line1": c.Address.Line1, "line2": c.Address.Line2, "city": c.Address.City,
			"state": c.Address.State, "postal_code": c.Address.PostalCode, "country": c.Address.Country}
	}
	return obj{
		"id": c.ID, "object": "customer", "address": addr, "balance": 0, "created": c.Created, "currency": nil,
		"default_source": nil, "delinquent": false, "description": c.Description, "discount": nil,
		"email": c.Email, "invoice_prefix": invoicePrefix(c.Seq),
		"invoice_settings": obj{"custom_fields": nil, "default_payment_method": c.DefaultPaymentMethod,
			"footer": nil, "rendering_options": nil},
		"livemode": s.live, "metadata": metadataJSON(c.Metadata), "name": c.Name, "next_invoice_sequence": 1,
		"phone": c.Phone, "preferred_locales": []string{}, "shipping": nil, "tax_exempt": "none",
		"test_clock": c.TestClock,
	}
}

func invoicePrefix(seq int64) string {
	return "SIM" + strconv.FormatInt(1000+seq%9000, 10)
}

func (s *store) renderProduct(p *product) obj {
	if p.Deleted {
		return obj{"id": p.ID, "object": "product", "deleted": true}
	}
	return obj{
		"id": p.ID, "object": "product", "active": p.Active, "created": p.Created, "default_price": p.DefaultPrice,
		"description": p.Description, "features": []any{}, "images": []string{}, "livemode": s.live,
		"metadata": metadataJSON(p.Metadata), "name": p.Name, "package_dimensions": nil, "shippable": nil,
		"statement_descriptor": p.StatementDescriptor, "tax_code": p.TaxCode, "type": "service",
		"unit_label": p.UnitLabel, "updated": p.Updated, "url": nil,
	}
}

func (s *store) renderPrice(p *price) obj {
	var rec any
	typ := "one_time"
	if p.Recurring != nil {
		typ = "recurring"
		rec = obj{"aggregate_usage": nil, "interval": p.Recurring.Interval,
			"interval_count": p.Recurring.IntervalCount, "trial_period_days": nil, "usage_type": p.Recurring.UsageType}
	}
	return obj{
		"id": p.ID, "object": "price", "active": p.Active, "billing_scheme": "per_unit", "created": p.Created,
		"currency": p.Currency, "custom_unit_amount": nil, "livemode": s.live, "lookup_key": p.LookupKey,
		"metadata": metadataJSON(p.Metadata), "nickname": p.Nickname, "product": p.Product, "recurring": rec,
		"tax_behavior": p.TaxBehavior, "tiers_mode": nil, "transform_quantity": nil, "type": typ,
		"unit_amount": p.UnitAmount, "unit_amount_decimal": strconv.FormatInt(p.UnitAmount, 10),
	}
}

func (s *store) renderSubscription(sub *subscription, expand map[string]bool) obj {
	items := make([]any, 0, len(sub.Items))
	for _, it := range sub.Items {
		var pr any = it.Price
		if p := s.prices[it.Price]; p != nil {
			pr = s.renderPrice(p)
		}
		items = append(items, obj{
			"id": it.ID, "object": "subscription_item", "created": it.Created,
			"metadata": metadataJSON(it.Metadata), "price": pr, "quantity": it.Quantity, "subscription": sub.ID,
			"tax_rates": []any{},
		})
	}
	var cust any = sub.Customer
	if expand["customer"] {
		if c := s.customers[sub.Customer]; c != nil {
			cust = s.renderCustomer(c)
		}
	}
	var latest any
	if sub.LatestInvoice != nil {
		latest = *sub.LatestInvoice
		if expand["latest_invoice"] {
			if in := s.invoices[*sub.LatestInvoice]; in != nil {
				latest = s.renderInvoice(in)
			}
		}
	}
	return obj{
		"id": sub.ID, "object": "subscription", "application": nil, "billing_cycle_anchor": sub.BillingCycleAnchor,
		"cancel_at": cancelAt(sub), "cancel_at_period_end": sub.CancelAtPeriodEnd, "canceled_at": sub.CanceledAt,
		"collection_method": sub.CollectionMethod, "created": sub.Created, "currency": sub.Currency,
		"current_period_end": sub.CurrentPeriodEnd, "current_period_start": sub.CurrentPeriodStart,
		"customer": cust, "days_until_due": sub.DaysUntilDue, "default_payment_method": sub.DefaultPaymentMethod,
		"description": nil, "discount": nil, "ended_at": sub.EndedAt,
		"items": obj{"object": "list", "data": items, "has_more": false,
			"url": "/v1/subscription_items?subscription=" + sub.ID},
		"latest_invoice": latest, "livemode": s.live, "metadata": metadataJSON(sub.Metadata),
		"pending_update": nil, "start_date": sub.StartDate, "status": sub.Status, "trial_end": sub.TrialEnd,
		"trial_start": sub.TrialStart, "trial_settings": obj{"end_behavior": obj{
			"missing_payment_method": trialEndBehavior(sub)}},
	}
}

func trialEndBehavior(sub *subscription) string {
	if sub.TrialEndBehavior == "" {
		return "create_invoice"
	}
	return sub.TrialEndBehavior
}

func cancelAt(sub *subscription) any {
	if sub.CancelAtPeriodEnd {
		return sub.CurrentPeriodEnd
	}
	return nil
}

func (s *store) renderInvoice(in *invoice) obj {
	return obj{
		"id": in.ID, "object": "invoice", "amount_due": in.AmountDue, "amount_paid": in.AmountPaid,
		"amount_remaining": in.AmountRemaining, "billing_reason": in.BillingReason,
		"collection_method": in.CollectionMethod, "created": in.Created, "currency": in.Currency,
		"customer": in.Customer, "due_date": in.DueDate, "hosted_invoice_url": in.HostedInvoiceURL,
		"livemode": s.live, "metadata": metadataJSON(in.Metadata), "paid": in.Paid, "period_end": in.PeriodEnd,
		"attempt_count": in.AttemptCount, "attempted": in.AttemptCount > 0,
		"next_payment_attempt": in.NextPaymentAttempt, "payment_intent": paymentIntentID(in),
		"period_start": in.PeriodStart, "status": in.Status, "subscription": in.Subscription,
		"subscription_details": in.SubscriptionDetails,
	}
}
