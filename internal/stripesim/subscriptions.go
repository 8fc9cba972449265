package stripesim

import (
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Subscription statuses.
const (
	statusTrialing          = "trialing"
	statusActive            = "active"
	statusCanceled          = "canceled"
	statusIncompleteExpired = "incomplete_expired"
)

var subscriptionCreateParams = []string{"customer", "items", "trial_period_days", "collection_method",
	"days_until_due", "payment_behavior", "default_payment_method", "cancel_at_period_end", "proration_behavior",
	"metadata", "description", "off_session", "trial_settings", "coupon", "promotion_code",
	"default_tax_rates"}

var subscriptionUpdateParams = []string{"items", "collection_method", "days_until_due", "payment_behavior",
	"default_payment_method", "cancel_at_period_end", "proration_behavior", "metadata", "description",
	"off_session", "cancellation_details", "coupon", "promotion_code", "default_tax_rates"}

// addPeriod moves t forward by count intervals, as Stripe bills: calendar months and years.
func addPeriod(t int64, interval string, count int64) int64 {
	tm := time.Unix(t, 0).UTC()
	n := int(count)
	switch interval {
	case "day":
		tm = tm.AddDate(0, 0, n)
	case "week":
		tm = tm.AddDate(0, 0, 7*n)
	case "month":
		tm = tm.AddDate(0, n, 0)
	default:
		tm = tm.AddDate(n, 0, 0)
	}
	return tm.Unix()
}

// subscriptionCommon applies the fields create and update share.
func (c *call) subscriptionCommon(sub *subscription) {
	f, p := &c.f, c.form
	if v, ok := f.enum(p, "collection_method", "charge_automatically", "send_invoice"); ok {
		sub.CollectionMethod = v
	}
	if n, ok := f.integer(p, "days_until_due"); ok {
		sub.DaysUntilDue = &n
	}
	if sub.CollectionMethod != "send_invoice" && sub.DaysUntilDue != nil {
		f.fail("days_until_due", "days_until_due can only be set when collection_method is send_invoice.")
	}
	f.enum(p, "payment_behavior", "allow_incomplete", "default_incomplete", "error_if_incomplete",
		"pending_if_incomplete")
	f.enum(p, "proration_behavior", "create_prorations", "none", "always_invoice")
	f.boolean(p, "off_session")
	f.optStr(p, "description")
	if v := f.optStr(p, "default_payment_method"); v != nil {
		id := *v
		if id != "" {
			id = c.defaultPaymentMethod("default_payment_method", id, sub.Customer)
		}
		sub.DefaultPaymentMethod = nilIfEmpty(id)
	}
	if v, ok := f.boolean(p, "cancel_at_period_end"); ok {
		sub.CancelAtPeriodEnd = v
	}
	if ids, ok := c.taxRateIDs(p, "default_tax_rates", "", sub.DefaultTaxRates); ok {
		sub.DefaultTaxRates = ids
	}
	sub.Metadata = f.metadata(p, sub.Metadata)
}

// itemQuantity reads a new item's quantity: 1 by default, none on a metered price.
func (c *call) itemQuantity(it *param, prefix string, pr *price) int64 {
	qty := int64(1)
	if n, ok := c.f.integer(it, "quantity"); ok {
		if n < 0 {
			c.f.fail(prefix+"[quantity]", "Invalid integer: %d", n)
		}
		qty = n
	}
	if c.meteredItem(pr, prefix, it.get("quantity") != nil) {
		qty = 0
	}
	return qty
}

// itemPrice checks that a price can be subscribed to.
func (c *call) itemPrice(param, id, currency string) *price {
	pr, ok := c.st.prices[id]
	switch {
	case !ok:
		if c.f.err == nil {
			c.f.err = noSuch("price", param, id)
		}
		return nil
	case !pr.Active:
		c.f.fail(param, "The price specified is inactive. This field only accepts active prices.")
	case pr.Recurring == nil:
		c.f.fail(param, "The price specified is set to `type=one_time` but this field only accepts prices "+
			"with `type=recurring`.")
	case currency != "" && pr.Currency != currency:
		c.f.fail(param, "All prices on a subscription must have the same currency.")
	}
	return pr
}

func (c *call) createSubscription() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, subscriptionCreateParams...)
	custID, ok := f.str(p, "customer")
	if !ok && f.err == nil {
		return nil, missingParam("customer")
	}
	cu, exists := c.st.customers[custID]
	if f.err == nil && (!exists || cu.Deleted) {
		return nil, noSuch("customer", "customer", custID)
	}
	items := p.get("items").list()
	if len(items) == 0 && f.err == nil {
		return nil, missingParam("items")
	}
	if len(items) > 20 {
		f.fail("items", "A subscription can have at most 20 items.")
	}
	sub := &subscription{meta: c.nextMeta("sub"), Customer: custID, CollectionMethod: "charge_automatically"}
	seen := map[string]bool{}
	for i, it := range items {
		prefix := "items[" + strconv.Itoa(i) + "]"
		f.unknownIn(it, prefix, "price", "quantity", "metadata", "tax_rates")
		priceID, ok := f.str(it, "price")
		if !ok {
			if f.err == nil {
				f.err = missingParam(prefix + "[price]")
			}
			break
		}
		pr := c.itemPrice(prefix+"[price]", priceID, sub.Currency)
		if pr == nil {
			break
		}
		if seen[priceID] {
			f.fail(prefix+"[price]", "Cannot add multiple subscription items with the same price: %s", priceID)
		}
		seen[priceID] = true
		sub.Currency = pr.Currency
		item := &subscriptionItem{meta: c.nextMeta("si"), Price: priceID, Quantity: c.itemQuantity(it, prefix, pr)}
		item.Metadata = f.metadata(it, item.Metadata)
		item.TaxRates, _ = c.taxRateIDs(it, "tax_rates", prefix, nil)
		sub.Items = append(sub.Items, item)
	}
	c.subscriptionCommon(sub)
	if ts := p.get("trial_settings"); ts != nil {
		f.unknownIn(ts, "trial_settings", "end_behavior")
		eb := ts.get("end_behavior")
		f.unknownIn(eb, "trial_settings[end_behavior]", "missing_payment_method")
		if v, ok := f.enum(eb, "missing_payment_method", "cancel", "create_invoice", "pause"); ok {
			sub.TrialEndBehavior = v
		}
	}
	trialDays, hasTrial := f.integer(p, "trial_period_days")
	if hasTrial && (trialDays < 0 || trialDays > 730) {
		f.fail("trial_period_days", "trial_period_days must be between 0 and 730.")
	}
	if f.err != nil {
		return nil, f.err
	}

	// A customer on a test clock lives at the clock's time.
	c.now = c.st.clockTime(custID, c.now)
	sub.Created = c.now
	undoRedeem := c.redeem(sub, c.st.subtotalOf(sub))
	if f.err != nil {
		return nil, f.err
	}
	sub.StartDate, sub.BillingCycleAnchor, sub.CurrentPeriodStart = c.now, c.now, c.now
	first := c.st.prices[sub.Items[0].Price].Recurring
	if hasTrial && trialDays > 0 {
		end := c.now + trialDays*86400
		sub.Status, sub.TrialStart, sub.TrialEnd = statusTrialing, &c.now, &end
		sub.CurrentPeriodEnd, sub.BillingCycleAnchor = end, end
	} else {
		sub.Status = statusIncomplete
		sub.CurrentPeriodEnd = addPeriod(c.now, first.Interval, first.IntervalCount)
	}
	behavior, _ := f.str(p, "payment_behavior")
	in := c.invoiceFor(sub, "subscription_create")
	switch {
	case sub.Status == statusTrialing:
		c.payInvoice(in, sub) // free
	case sub.CollectionMethod == "send_invoice":
		sub.Status = statusActive
	case behavior == "default_incomplete":
		// Stays incomplete until its first invoice is paid.
	default:
		if res := c.payInvoice(in, sub); res.ok {
			sub.Status = statusActive
		} else if behavior == "error_if_incomplete" {
			// Nothing is created: Stripe answers 402 with the card error.
			delete(c.st.invoices, in.ID)
			undoRedeem()
			c.events = nil
			return nil, cardError(res)
		}
	}
	c.st.subscriptions[sub.ID] = sub
	// customer.subscription.created comes first, as Stripe sends it.
	c.events = append([]pendingEvent{{typ: "customer.subscription.created",
		object: c.st.renderSubscription(sub, nil), at: c.now}}, c.events...)
	return c.st.renderSubscription(sub, c.expand), nil
}

// invoiceFor creates and finalizes the invoice of the subscription's current period (free during a trial). It is
// left open; the caller charges it.
func (c *call) invoiceFor(sub *subscription, reason string) *invoice {
	in := &invoice{meta: c.nextMeta("in"), Customer: sub.Customer, Subscription: sub.ID, Currency: sub.Currency,
		CollectionMethod: sub.CollectionMethod, PeriodStart: sub.CurrentPeriodStart,
		PeriodEnd: sub.CurrentPeriodEnd, BillingReason: reason, Status: "open",
		SubscriptionDetails: &invoiceSubscriptionDetails{Metadata: maps.Clone(metadataJSON(sub.Metadata))}}
	// One line per subscription item; a trial's first invoice is free (its lines are zero). A metered item is
	// billed in arrears: its line is the usage its meter recorded for the customer since the last invoice (none on
	// the first), priced per unit.
	free := sub.Status == statusTrialing && reason == "subscription_create"
	usageFrom := sub.MeteredFrom
	if usageFrom == 0 {
		usageFrom = sub.CurrentPeriodStart
	}
	for _, it := range sub.Items {
		pr := c.st.prices[it.Price]
		qty := it.Quantity
		l := &invoiceLine{ID: c.sim.newID("il"), SubscriptionItem: it.ID, Price: it.Price}
		if pr.Recurring.UsageType == "metered" {
			qty = c.st.usage(pr.Recurring.Meter, sub.Customer, usageFrom, sub.CurrentPeriodStart)
			l.PeriodStart, l.PeriodEnd = usageFrom, sub.CurrentPeriodStart
		}
		l.Quantity, l.Amount = qty, pr.UnitAmount*qty
		name := "Subscription"
		if prod := c.st.products[pr.Product]; prod != nil {
			name = prod.Name
		}
		l.Description = fmt.Sprintf("%d × %s (at %s / %s)", qty, name, money(pr.UnitAmount, pr.Currency),
			pr.Recurring.Interval)
		if free {
			l.Amount, l.Description = 0, "Trial period for "+name
		}
		in.Lines = append(in.Lines, l)
		in.AmountDue += l.Amount
	}
	sub.MeteredFrom = sub.CurrentPeriodStart
	// Stripe's order: the lines' subtotal, then discounts, then taxes, then the total.
	c.applyDiscount(in, sub)
	in.AmountDue -= in.DiscountAmount
	c.st.applyTaxes(in, sub)
	n := 0
	for _, other := range c.st.invoices {
		if other.Customer == sub.Customer {
			n++
		}
	}
	prefix := "SIM"
	if cu := c.st.customers[sub.Customer]; cu != nil {
		prefix = invoicePrefix(cu.Seq)
	}
	in.Number = fmt.Sprintf("%s-%04d", prefix, n+1)
	in.AmountRemaining = in.AmountDue
	in.HostedInvoiceURL = "https://invoice.stripe.com/i/sim/" + in.ID
	if sub.CollectionMethod == "send_invoice" && sub.DaysUntilDue != nil {
		due := c.now + *sub.DaysUntilDue*86400
		in.DueDate = &due
	}
	c.st.invoices[in.ID] = in
	sub.LatestInvoice = &in.ID
	c.emitInvoice("invoice.created", in)
	c.emitInvoice("invoice.finalized", in)
	return in
}

func (c *call) subscription() (*subscription, *apiError) {
	sub, ok := c.st.subscriptions[c.id]
	if !ok {
		return nil, noSuch("subscription", "id", c.id)
	}
	return sub, nil
}

func (c *call) getSubscription() (any, *apiError) {
	c.f.unknown(c.form)
	sub, err := c.subscription()
	if err != nil {
		return nil, err
	}
	return c.st.renderSubscription(sub, c.expand), nil
}

func (c *call) updateSubscription() (any, *apiError) {
	f, p := &c.f, c.form
	if f.unknown(p, subscriptionUpdateParams...); f.err != nil {
		return nil, f.err
	}
	sub, err := c.subscription()
	if err != nil {
		return nil, err
	}
	c.now = c.st.clockTime(sub.Customer, c.now) // objects on a test clock live at its time
	if sub.Status == statusCanceled || sub.Status == statusIncompleteExpired {
		for _, k := range p.order {
			if k != "metadata" && k != "cancellation_details" && k != "expand" {
				return nil, invalidRequest("A canceled subscription can only update its cancellation_details " +
					"and metadata.")
			}
		}
	}
	next := *sub
	next.Items = append([]*subscriptionItem(nil), sub.Items...)
	for i, it := range p.get("items").list() {
		prefix := "items[" + strconv.Itoa(i) + "]"
		c.updateItem(&next, it, prefix)
		if f.err != nil {
			return nil, f.err
		}
	}
	if len(next.Items) == 0 {
		f.fail("items", "A subscription must have at least one item.")
	}
	if len(next.Items) > 20 {
		f.fail("items", "A subscription can have at most 20 items.")
	}
	c.subscriptionCommon(&next)
	if f.err != nil {
		return nil, f.err
	}
	if c.redeem(&next, c.st.subtotalOf(&next)); f.err != nil {
		return nil, f.err
	}
	before := c.st.renderSubscription(sub, nil)
	*sub = next
	c.emitUpdate("customer.subscription.updated", before, c.st.renderSubscription(sub, nil))
	return c.st.renderSubscription(sub, c.expand), nil
}

// updateItem applies one items[i] entry: with an id it changes or (deleted=true) removes that item, without one it
// adds an item.
func (c *call) updateItem(sub *subscription, it *param, prefix string) {
	f := &c.f
	f.unknownIn(it, prefix, "id", "price", "quantity", "deleted", "metadata", "clear_usage", "tax_rates")
	id, hasID := f.str(it, "id")
	priceID, hasPrice := f.str(it, "price")
	deleted, _ := f.boolean(it, "deleted")
	qty, hasQty := f.integer(it, "quantity")
	if hasQty && qty < 0 {
		f.fail(prefix+"[quantity]", "Invalid integer: %d", qty)
	}
	var pr *price
	if hasPrice {
		pr = c.itemPrice(prefix+"[price]", priceID, sub.Currency)
		for _, other := range sub.Items {
			if other.Price == priceID && other.ID != id {
				f.fail(prefix+"[price]", "Cannot add multiple subscription items with the same price: %s", priceID)
			}
		}
	}
	if f.err != nil {
		return
	}
	if !hasID {
		if !hasPrice {
			f.err = missingParam(prefix + "[price]")
			return
		}
		if !hasQty {
			qty = 1
		}
		if c.meteredItem(pr, prefix, hasQty) {
			qty = 0
		}
		item := &subscriptionItem{meta: c.nextMeta("si"), Price: priceID, Quantity: qty}
		item.Metadata = f.metadata(it, item.Metadata)
		item.TaxRates, _ = c.taxRateIDs(it, "tax_rates", prefix, nil)
		sub.Items = append(sub.Items, item)
		return
	}
	for i, existing := range sub.Items {
		if existing.ID != id {
			continue
		}
		if deleted {
			sub.Items = append(sub.Items[:i:i], sub.Items[i+1:]...)
			return
		}
		changed := *existing
		if hasPrice {
			changed.Price = priceID
		}
		if hasQty {
			changed.Quantity = qty
		}
		if c.meteredItem(c.st.prices[changed.Price], prefix, hasQty) {
			changed.Quantity = 0
		}
		changed.Metadata = f.metadata(it, changed.Metadata)
		if ids, ok := c.taxRateIDs(it, "tax_rates", prefix, existing.TaxRates); ok {
			changed.TaxRates = ids
		}
		sub.Items[i] = &changed
		return
	}
	f.err = &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: prefix + "[id]",
		Code: codeResourceMissing, Message: "No such subscription item: '" + id + "'"}
}

// cancelSubscription cancels at once (DELETE /v1/subscriptions/{id}).
func (c *call) cancelSubscription() (any, *apiError) {
	c.f.unknown(c.form, "invoice_now", "prorate", "cancellation_details")
	sub, err := c.subscription()
	if err != nil {
		return nil, err
	}
	if sub.Status == statusCanceled || sub.Status == statusIncompleteExpired {
		return nil, noSuch("subscription", "id", c.id)
	}
	c.now = c.st.clockTime(sub.Customer, c.now)
	c.cancelNow(sub)
	return c.st.renderSubscription(sub, c.expand), nil
}

func (c *call) cancelNow(sub *subscription) {
	if sub.CancelReason == "" {
		sub.CancelReason = "cancellation_requested"
	}
	now := c.now
	sub.Status, sub.CanceledAt, sub.EndedAt = statusCanceled, &now, &now
	c.emit("customer.subscription.deleted", c.st.renderSubscription(sub, nil), nil)
}

func (c *call) listSubscriptions() (any, *apiError) {
	c.listParams("customer", "price", "status", "collection_method", "test_clock")
	cust, hasCust := c.f.str(c.form, "customer")
	pr, hasPrice := c.f.str(c.form, "price")
	status, hasStatus := c.f.enum(c.form, "status", "active", "all", "canceled", "ended", "incomplete",
		"incomplete_expired", "past_due", "paused", "trialing", "unpaid")
	cm, hasCM := c.f.str(c.form, "collection_method")
	var objs []*subscription
	for _, sub := range c.st.subscriptions {
		ended := sub.Status == statusCanceled || sub.Status == statusIncompleteExpired
		switch {
		case hasCust && sub.Customer != cust, hasCM && sub.CollectionMethod != cm:
			continue
		case !hasStatus && sub.Status == statusCanceled:
			continue
		case hasStatus && status == "ended" && !ended:
			continue
		case hasStatus && status != "all" && status != "ended" && sub.Status != status:
			continue
		}
		if hasPrice && !hasItemPrice(sub, pr) {
			continue
		}
		objs = append(objs, sub)
	}
	return list(c, "/v1/subscriptions", objs, func(s *subscription) obj {
		return c.st.renderSubscription(s, c.expand)
	}), nil
}

func hasItemPrice(sub *subscription, priceID string) bool {
	for _, it := range sub.Items {
		if it.Price == priceID {
			return true
		}
	}
	return false
}

func (c *call) searchSubscriptions() (any, *apiError) {
	return search(c, "/v1/subscriptions/search", values(c.st.subscriptions), []string{"status", "created"},
		func(s *subscription) map[string]string {
			return map[string]string{"status": s.Status, "created": strconv.FormatInt(s.Created, 10)}
		}, func(s *subscription) obj { return c.st.renderSubscription(s, c.expand) }), nil
}

func (c *call) getInvoice() (any, *apiError) {
	c.f.unknown(c.form)
	in, ok := c.st.invoices[c.id]
	if !ok {
		return nil, noSuch("invoice", "id", c.id)
	}
	return c.st.renderInvoice(in), nil
}

// listInvoices is GET /v1/invoices: newest first, filtered by customer, subscription, status and collection
// method.
func (c *call) listInvoices() (any, *apiError) {
	c.listParams("customer", "subscription", "status", "collection_method")
	cust, hasCust := c.f.str(c.form, "customer")
	sub, hasSub := c.f.str(c.form, "subscription")
	status, hasStatus := c.f.enum(c.form, "status", "draft", "open", "paid", "uncollectible", "void")
	cm, hasCM := c.f.enum(c.form, "collection_method", "charge_automatically", "send_invoice")
	if c.f.err != nil {
		return nil, c.f.err
	}
	var objs []*invoice
	for _, in := range c.st.invoices {
		if (hasCust && in.Customer != cust) || (hasSub && in.Subscription != sub) ||
			(hasStatus && in.Status != status) || (hasCM && in.CollectionMethod != cm) {
			continue
		}
		objs = append(objs, in)
	}
	return list(c, "/v1/invoices", objs, c.st.renderInvoice), nil
}

// money renders an amount as Stripe's invoice lines do: $20.00 in dollars, 20.00 EUR otherwise.
func money(amount int64, currency string) string {
	if currency == "usd" {
		return fmt.Sprintf("$%d.%02d", amount/100, amount%100)
	}
	return fmt.Sprintf("%d.%02d %s", amount/100, amount%100, strings.ToUpper(currency))
}
