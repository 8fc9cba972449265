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
	// TaxExempt is none (stored as ""), exempt or reverse.
	TaxExempt string `json:"tax_exempt"`
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
	// Meter is the billing meter whose usage a metered price bills.
	Meter string `json:"meter"`
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
	// TaxRates, when set, replace the subscription's default tax rates for this item.
	TaxRates []string `json:"tax_rates"`
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
	// MeteredFrom is the start of the usage the next invoice bills for metered items (the previous period).
	MeteredFrom int64 `json:"metered_from"`
	// TrialEndBehavior is trial_settings.end_behavior.missing_payment_method: create_invoice, cancel or pause.
	TrialEndBehavior string `json:"trial_end_behavior"`
	// CancelReason is cancellation_details.reason once canceled: cancellation_requested or payment_failed.
	CancelReason string `json:"cancel_reason"`
	// Discount is the coupon applied to the subscription's invoices, if any.
	Discount *discount `json:"discount"`
	// DefaultTaxRates apply to every item without tax rates of its own.
	DefaultTaxRates []string `json:"default_tax_rates"`
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
	// Lines are the invoice's line items, one per subscription item billed; their amounts sum to AmountDue.
	Lines []*invoiceLine `json:"lines"`
	// Number is the invoice number, given at finalization (the customer's invoice prefix and a sequence).
	Number string `json:"number"`
	// PaidAt and VoidedAt are status_transitions.
	PaidAt   *int64 `json:"paid_at"`
	VoidedAt *int64 `json:"voided_at"`
	// Discount is the subscription's discount as it was applied to this invoice; DiscountAmount is what it took off
	// the lines (applyDiscount).
	Discount       *discount `json:"discount"`
	DiscountAmount int64     `json:"discount_amount"`
	// DefaultTaxRates are the subscription's default tax rates when the invoice was made.
	DefaultTaxRates []string `json:"default_tax_rates"`
}

// invoiceLine is a line item of a subscription invoice: one subscription item for the invoice's period.
type invoiceLine struct {
	ID               string `json:"id"`
	SubscriptionItem string `json:"subscription_item"`
	Price            string `json:"price"`
	Quantity         int64  `json:"quantity"`
	Amount           int64  `json:"amount"`
	Description      string `json:"description"`
	// DiscountAmount is what the invoice's discount took off this line.
	DiscountAmount int64 `json:"discount_amount"`
	// PeriodStart and PeriodEnd, when set, are the period the line bills (a metered line: the period before the
	// invoice's); otherwise the invoice's.
	PeriodStart int64 `json:"period_start,omitempty"`
	PeriodEnd   int64 `json:"period_end,omitempty"`
	// TaxRates are the rates applied to the line, and Taxes what each came to (see applyTaxes).
	TaxRates []string  `json:"tax_rates"`
	Taxes    []lineTax `json:"taxes"`
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
		"phone": c.Phone, "preferred_locales": []string{}, "shipping": nil, "tax_exempt": taxExempt(c.TaxExempt),
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
		"statement_descriptor": p.StatementDescriptor, "tax_code": p.TaxCode,
		"unit_label": p.UnitLabel, "updated": p.Updated, "url": nil,
	}
}

func (s *store) renderPrice(p *price) obj {
	var rec any
	typ := "one_time"
	if p.Recurring != nil {
		typ = "recurring"
		r := obj{"aggregate_usage": nil, "interval": p.Recurring.Interval,
			"interval_count": p.Recurring.IntervalCount, "usage_type": p.Recurring.UsageType}
		if p.Recurring.Meter != "" { // a field of later API versions, rendered only on a price that has it
			r["meter"] = p.Recurring.Meter
		}
		rec = r
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
			"tax_rates": s.renderTaxRates(it.TaxRates), "billing_thresholds": nil,
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
		"description": nil, "discount": s.subscriptionDiscount(sub), "ended_at": sub.EndedAt,
		"items": obj{"object": "list", "data": items, "has_more": false,
			"url": "/v1/subscription_items?subscription=" + sub.ID},
		"latest_invoice": latest, "livemode": s.live, "metadata": metadataJSON(sub.Metadata),
		"pending_update": nil, "start_date": sub.StartDate, "status": sub.Status, "trial_end": sub.TrialEnd,
		"trial_start": sub.TrialStart, "trial_settings": obj{"end_behavior": obj{
			"missing_payment_method": trialEndBehavior(sub)}},
		"application_fee_percent": nil, "automatic_tax": obj{"enabled": false, "liability": nil},
		"billing_cycle_anchor_config": nil, "billing_thresholds": nil,
		"cancellation_details": obj{"comment": nil, "feedback": nil, "reason": nilIfEmpty(sub.CancelReason)},
		"default_source":       nil, "default_tax_rates": s.renderTaxRates(sub.DefaultTaxRates),
		"next_pending_invoice_item_invoice": nil, "on_behalf_of": nil, "pause_collection": nil,
		"payment_settings": obj{"payment_method_options": nil, "payment_method_types": nil,
			"save_default_payment_method": "off"},
		"pending_invoice_item_interval": nil, "pending_setup_intent": nil, "schedule": nil,
		"test_clock": s.customerClock(sub.Customer), "transfer_data": nil,
	}
}

// customerClock is the test clock of a customer, for the objects that belong to it.
func (s *store) customerClock(id string) any {
	if cu := s.customers[id]; cu != nil && cu.TestClock != nil {
		return *cu.TestClock
	}
	return nil
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
	lines := make([]any, 0, len(in.Lines))
	for _, l := range in.Lines {
		var pr any = l.Price
		if p := s.prices[l.Price]; p != nil {
			pr = s.renderPrice(p)
		}
		start, end := in.PeriodStart, in.PeriodEnd
		if l.PeriodEnd != 0 {
			start, end = l.PeriodStart, l.PeriodEnd
		}
		lineIncluded := int64(0)
		for _, t := range l.Taxes {
			if t.Inclusive {
				lineIncluded += t.Amount
			}
		}
		lines = append(lines, obj{"id": l.ID, "object": "line_item", "amount": l.Amount,
			"amount_excluding_tax": l.Amount - lineIncluded, "currency": in.Currency, "description": l.Description,
			"discount_amounts": discountAmounts(in.Discount, l.DiscountAmount), "discountable": true,
			"discounts": discountIDs(in.Discount), "invoice": in.ID,
			"livemode": s.live, "metadata": obj{},
			"period": obj{"end": end, "start": start}, "price": pr, "proration": false,
			"proration_details": obj{"credited_items": nil}, "quantity": l.Quantity,
			"subscription": nilIfEmpty(in.Subscription), "subscription_item": nilIfEmpty(l.SubscriptionItem),
			"tax_amounts": renderLineTaxes(l), "tax_rates": s.renderTaxRates(l.TaxRates), "type": "subscription",
			"unit_amount_excluding_tax": unitAmount(l.Amount-lineIncluded, l.Quantity)})
	}
	var subtotal int64
	for _, l := range in.Lines {
		subtotal += l.Amount
	}
	included, added := invoiceTaxes(in)
	var tax any // null on an invoice without tax rates
	for _, l := range in.Lines {
		if len(l.TaxRates) > 0 {
			tax = included + added
		}
	}
	var cust *customer
	if cu := s.customers[in.Customer]; cu != nil && !cu.Deleted {
		cust = cu
	}
	field := func(get func(*customer) *string) any {
		if cust == nil {
			return nil
		}
		return get(cust)
	}
	var custAddr any
	if cust != nil && cust.Address != nil {
		custAddr = obj{"line1": cust.Address.Line1, "line2": cust.Address.Line2, "city": cust.Address.City,
			"state": cust.Address.State, "postal_code": cust.Address.PostalCode, "country": cust.Address.Country}
	}
	var charge any
	if in.PaymentIntent != nil {
		charge = nilIfEmpty(in.PaymentIntent.LatestCharge)
	}
	autoAdvance := in.Status == "open" || in.Status == "draft"
	return obj{
		"id": in.ID, "object": "invoice", "account_country": "US", "account_name": "Stripe Simulator",
		"account_tax_ids": nil, "amount_due": in.AmountDue, "amount_paid": in.AmountPaid,
		"amount_remaining": in.AmountRemaining, "amount_shipping": 0, "application": nil,
		"application_fee_amount": nil, "attempt_count": in.AttemptCount, "attempted": in.AttemptCount > 0,
		"auto_advance": autoAdvance, "automatic_tax": obj{"enabled": false, "liability": nil, "status": nil},
		"billing_reason": in.BillingReason, "charge": charge, "collection_method": in.CollectionMethod,
		"created": in.Created, "currency": in.Currency, "custom_fields": nil, "customer": in.Customer,
		"customer_address": custAddr, "customer_email": field(func(c *customer) *string { return c.Email }),
		"customer_name":  field(func(c *customer) *string { return c.Name }),
		"customer_phone": field(func(c *customer) *string { return c.Phone }), "customer_shipping": nil,
		"customer_tax_exempt": customerTaxExempt(cust), "customer_tax_ids": s.customerTaxIDs(in.Customer),
		"default_payment_method": nil, "default_source": nil,
		"default_tax_rates": s.renderTaxRates(in.DefaultTaxRates), "description": nil, "discount": s.invoiceDiscount(in),
		"discounts": discountIDs(in.Discount), "due_date": in.DueDate, "effective_at": in.Created, "ending_balance": 0,
		"footer": nil, "from_invoice": nil, "hosted_invoice_url": in.HostedInvoiceURL,
		"invoice_pdf": in.HostedInvoiceURL + "/pdf", "issuer": obj{"type": "self"},
		"last_finalization_error": nil, "latest_revision": nil,
		"lines":    obj{"object": "list", "data": lines, "has_more": false, "url": "/v1/invoices/" + in.ID + "/lines"},
		"livemode": s.live, "metadata": metadataJSON(in.Metadata), "next_payment_attempt": in.NextPaymentAttempt,
		"number": nilIfEmpty(in.Number), "on_behalf_of": nil, "paid": in.Paid, "paid_out_of_band": false,
		"payment_intent": paymentIntentID(in),
		"payment_settings": obj{"default_mandate": nil, "payment_method_options": nil,
			"payment_method_types": nil},
		"period_end": in.PeriodEnd, "period_start": in.PeriodStart, "post_payment_credit_notes_amount": 0,
		"pre_payment_credit_notes_amount": 0, "quote": nil, "receipt_number": nil, "rendering": nil,
		"shipping_cost": nil, "shipping_details": nil, "starting_balance": 0, "statement_descriptor": nil,
		"status": in.Status,
		"status_transitions": obj{"finalized_at": in.Created, "marked_uncollectible_at": nil,
			"paid_at": in.PaidAt, "voided_at": in.VoidedAt},
		"subscription": nilIfEmpty(in.Subscription), "subscription_details": in.SubscriptionDetails,
		"subtotal": subtotal, "subtotal_excluding_tax": subtotal - included, "tax": tax,
		"test_clock": s.customerClock(in.Customer), "total": subtotal - in.DiscountAmount + added,
		"total_discount_amounts": discountAmounts(in.Discount, in.DiscountAmount),
		"total_excluding_tax":    subtotal - in.DiscountAmount - included, "total_tax_amounts": renderTotalTaxes(in),
		"transfer_data":         nil,
		"webhooks_delivered_at": in.Created,
	}
}

// subscriptionDiscount renders a subscription's discount, or nil.
func (s *store) subscriptionDiscount(sub *subscription) any {
	if sub.Discount == nil {
		return nil
	}
	return s.renderDiscount(sub.Discount, "")
}

// invoiceDiscount renders the discount an invoice applied, or nil.
func (s *store) invoiceDiscount(in *invoice) any {
	if in.Discount == nil {
		return nil
	}
	return s.renderDiscount(in.Discount, in.ID)
}

func unitAmount(amount, quantity int64) string {
	if quantity == 0 {
		return "0"
	}
	return strconv.FormatInt(amount/quantity, 10)
}

// taxExempt renders a customer's tax_exempt: none unless set.
func taxExempt(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func customerTaxExempt(cu *customer) any {
	if cu == nil {
		return nil
	}
	return taxExempt(cu.TaxExempt)
}
