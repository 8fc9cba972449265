package stripesim

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Tax rates, and the tax step of an invoice. Stripe's tax rates are immutable in percentage and inclusive (an
// update naming them is an unknown parameter, as Stripe answers) and cannot be deleted, only archived
// (active=false): an archived rate keeps working where it is already set, and cannot be newly applied.

type taxRate struct {
	meta
	DisplayName  string  `json:"display_name"`
	Percentage   float64 `json:"percentage"`
	Inclusive    bool    `json:"inclusive"`
	Active       bool    `json:"active"`
	Country      *string `json:"country"`
	State        *string `json:"state"`
	Jurisdiction *string `json:"jurisdiction"`
	Description  *string `json:"description"`
	TaxType      *string `json:"tax_type"`
}

// taxRateUpdateParams are the parameters of a tax rate update; create also takes percentage and inclusive.
var taxRateUpdateParams = []string{"active", "country", "description", "display_name", "jurisdiction", "metadata",
	"state", "tax_type"}

var taxTypes = []string{"amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst", "qst",
	"rst", "sales_tax", "vat"}

func (s *store) renderTaxRate(r *taxRate) obj {
	return obj{"id": r.ID, "object": "tax_rate", "active": r.Active, "country": r.Country, "created": r.Created,
		"description": r.Description, "display_name": r.DisplayName, "effective_percentage": r.Percentage,
		"inclusive": r.Inclusive, "jurisdiction": r.Jurisdiction, "jurisdiction_level": nil, "livemode": s.live,
		"metadata": metadataJSON(r.Metadata), "percentage": r.Percentage, "state": r.State,
		"tax_type": r.TaxType}
}

// taxRateFields applies the fields create and update share.
func (c *call) taxRateFields(r *taxRate) {
	f, p := &c.f, c.form
	if v, ok := f.str(p, "display_name"); ok {
		switch {
		case v == "":
			f.fail("display_name", "You must provide a non-empty display_name.")
		case len(v) > 50:
			f.fail("display_name", "Invalid display_name: must be at most 50 characters")
		}
		r.DisplayName = v
	}
	if v, ok := f.boolean(p, "active"); ok {
		r.Active = v
	}
	if v := f.optStr(p, "country"); v != nil {
		if *v != "" && (len(*v) != 2 || strings.ToUpper(*v) != *v) {
			f.fail("country", "Country '%s' is unknown. Try using a 2-character alphanumeric country code instead, "+
				"such as 'US', 'EG', or 'GB'. A full list of country codes is available at "+
				"https://stripe.com/docs/api/country_specs", *v)
		}
		r.Country = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "state"); v != nil {
		r.State = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "jurisdiction"); v != nil {
		if len(*v) > 50 {
			f.fail("jurisdiction", "Invalid jurisdiction: must be at most 50 characters")
		}
		r.Jurisdiction = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "description"); v != nil {
		r.Description = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "tax_type"); v != nil {
		if *v != "" && !slices.Contains(taxTypes, *v) {
			f.fail("tax_type", "Invalid tax_type: must be one of %s", strings.Join(taxTypes, ", "))
		}
		r.TaxType = nilIfEmpty(*v)
	}
	r.Metadata = f.metadata(p, r.Metadata)
}

func (c *call) createTaxRate() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, append([]string{"percentage", "inclusive"}, taxRateUpdateParams...)...)
	if f.err != nil {
		return nil, f.err
	}
	for _, req := range []string{"display_name", "inclusive", "percentage"} {
		if p.get(req) == nil {
			return nil, missingParam(req)
		}
	}
	r := &taxRate{meta: c.nextMeta("txr"), Active: true}
	pct, _ := f.str(p, "percentage")
	n, err := strconv.ParseFloat(pct, 64)
	switch {
	case err != nil || math.IsNaN(n) || math.IsInf(n, 0):
		f.fail("percentage", "Invalid decimal: %s", pct)
	case n < 0 || n > 100:
		f.fail("percentage", "Invalid percentage: must be between 0 and 100")
	case decimals(pct) > 4:
		f.fail("percentage", "Invalid percentage: at most 4 decimal places are allowed")
	}
	r.Percentage = n
	r.Inclusive, _ = f.boolean(p, "inclusive")
	c.taxRateFields(r)
	if f.err != nil {
		c.st.seq--
		return nil, f.err
	}
	c.st.taxRates[r.ID] = r
	out := c.st.renderTaxRate(r)
	c.emit("tax_rate.created", out, nil)
	return out, nil
}

// decimals counts the digits after a decimal point.
func decimals(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}

func (c *call) taxRate() (*taxRate, *apiError) {
	r, ok := c.st.taxRates[c.id]
	if !ok {
		return nil, noSuch("tax_rate", "tax_rate", c.id)
	}
	return r, nil
}

func (c *call) getTaxRate() (any, *apiError) {
	c.f.unknown(c.form)
	r, err := c.taxRate()
	if err != nil {
		return nil, err
	}
	return c.st.renderTaxRate(r), nil
}

func (c *call) updateTaxRate() (any, *apiError) {
	// percentage and inclusive are not update parameters: Stripe answers as for any unknown parameter.
	if c.f.unknown(c.form, taxRateUpdateParams...); c.f.err != nil {
		return nil, c.f.err
	}
	r, err := c.taxRate()
	if err != nil {
		return nil, err
	}
	next := *r
	c.taxRateFields(&next)
	if c.f.err != nil {
		return nil, c.f.err
	}
	before := c.st.renderTaxRate(r)
	*r = next
	out := c.st.renderTaxRate(r)
	c.emitUpdate("tax_rate.updated", before, out)
	return out, nil
}

func (c *call) listTaxRates() (any, *apiError) {
	c.listParams("active", "inclusive")
	active, hasActive := c.f.boolean(c.form, "active")
	inclusive, hasInclusive := c.f.boolean(c.form, "inclusive")
	var objs []*taxRate
	for _, r := range c.st.taxRates {
		if (hasActive && r.Active != active) || (hasInclusive && r.Inclusive != inclusive) {
			continue
		}
		objs = append(objs, r)
	}
	return list(c, "/v1/tax_rates", objs, c.st.renderTaxRate), nil
}

// taxRateIDs reads a list of tax rates (default_tax_rates, items[i][tax_rates]): ok is false when it was not sent;
// an empty value clears the list. A rate must exist, and a rate not in have (newly applied) must be active.
func (c *call) taxRateIDs(p *param, name, prefix string, have []string) ([]string, bool) {
	n := p.get(name)
	if n == nil {
		return nil, false
	}
	if n.value != nil {
		if *n.value != "" {
			c.f.fail(prefix+name, "Invalid array")
		}
		return nil, true
	}
	var ids []string
	for i, item := range n.list() {
		param := prefix + name + "[" + strconv.Itoa(i) + "]"
		if item.value == nil {
			c.f.fail(param, "Invalid string: {...}")
			return nil, true
		}
		id := *item.value
		r, ok := c.st.taxRates[id]
		switch {
		case !ok:
			if c.f.err == nil {
				c.f.err = noSuch("tax_rate", param, id)
			}
		case !r.Active && !slices.Contains(have, id):
			c.f.fail(param, "Tax rate %s is archived. Only active tax rates can be applied.", id)
		case slices.Contains(ids, id):
			c.f.fail(param, "The tax rate %s was given more than once.", id)
		}
		ids = append(ids, id)
	}
	return ids, true
}

// lineTax is the tax one rate adds to (exclusive) or includes in (inclusive) an invoice line.
type lineTax struct {
	Rate      string  `json:"rate"`
	Amount    int64   `json:"amount"`
	Inclusive bool    `json:"inclusive"`
	Taxable   int64   `json:"taxable"`
	Reason    *string `json:"reason"`
}

// taxableAmount is what a line's taxes apply to: its amount after its discounts (the discount step comes first).
func taxableAmount(l *invoiceLine) int64 { return l.Amount - l.DiscountAmount }

// applyTaxes is the tax step of an invoice, after the line subtotals and their discounts and before the total. Each
// line is taxed at its subscription item's tax rates, else the subscription's default tax rates. Inclusive rates
// are part of the amount: the amount excluding them is amount × 100 / (100 + their percentages). Exclusive rates
// add their percentage of the amount excluding inclusive tax. A customer exempt from tax (tax_exempt exempt or
// reverse) is charged none, with the reason. The exclusive tax is added to the amount due.
func (s *store) applyTaxes(in *invoice, sub *subscription) {
	reason := ""
	if cu := s.customers[in.Customer]; cu != nil {
		switch cu.TaxExempt {
		case "exempt":
			reason = "customer_exempt"
		case "reverse":
			reason = "reverse_charge"
		}
	}
	in.DefaultTaxRates = slices.Clone(sub.DefaultTaxRates)
	for _, l := range in.Lines {
		l.TaxRates = sub.DefaultTaxRates
		for _, it := range sub.Items {
			if it.ID == l.SubscriptionItem && len(it.TaxRates) > 0 {
				l.TaxRates = it.TaxRates
			}
		}
		l.TaxRates = slices.Clone(l.TaxRates)
		l.Taxes = nil
		taxable := taxableAmount(l)
		var inclusivePct float64
		for _, id := range l.TaxRates {
			if r := s.taxRates[id]; r != nil && r.Inclusive {
				inclusivePct += r.Percentage
			}
		}
		base := int64(math.Round(float64(taxable) * 100 / (100 + inclusivePct)))
		var included int64
		for _, id := range l.TaxRates {
			if r := s.taxRates[id]; r != nil && r.Inclusive {
				t := lineTax{Rate: id, Inclusive: true, Taxable: base,
					Amount: int64(math.Round(float64(base) * r.Percentage / 100))}
				included += t.Amount
				l.Taxes = append(l.Taxes, t)
			}
		}
		excluding := taxable - included
		for _, id := range l.TaxRates {
			if r := s.taxRates[id]; r != nil && !r.Inclusive {
				l.Taxes = append(l.Taxes, lineTax{Rate: id, Taxable: excluding,
					Amount: int64(math.Round(float64(excluding) * r.Percentage / 100))})
			}
		}
		for i := range l.Taxes {
			if reason != "" {
				l.Taxes[i].Amount, l.Taxes[i].Reason = 0, &reason
			}
			if !l.Taxes[i].Inclusive {
				in.AmountDue += l.Taxes[i].Amount
			}
		}
	}
}

// invoiceTaxes sums an invoice's line taxes: included in the amounts, and added to them.
func invoiceTaxes(in *invoice) (inclusive, exclusive int64) {
	for _, l := range in.Lines {
		for _, t := range l.Taxes {
			if t.Inclusive {
				inclusive += t.Amount
			} else {
				exclusive += t.Amount
			}
		}
	}
	return inclusive, exclusive
}

// renderTaxRates renders tax rates by ID, as subscriptions, their items, invoices and lines show them.
func (s *store) renderTaxRates(ids []string) []any {
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		if r := s.taxRates[id]; r != nil {
			out = append(out, s.renderTaxRate(r))
		}
	}
	return out
}

// renderLineTaxes renders a line's tax_amounts.
func renderLineTaxes(l *invoiceLine) []any {
	out := make([]any, 0, len(l.Taxes))
	for _, t := range l.Taxes {
		out = append(out, obj{"amount": t.Amount, "inclusive": t.Inclusive, "tax_rate": t.Rate,
			"taxability_reason": t.Reason, "taxable_amount": t.Taxable})
	}
	return out
}

// renderTotalTaxes renders an invoice's total_tax_amounts: the lines' taxes summed per rate, in the order the
// rates first appear.
func renderTotalTaxes(in *invoice) []any {
	var order []string
	sums := map[string]*lineTax{}
	for _, l := range in.Lines {
		for _, t := range l.Taxes {
			sum, ok := sums[t.Rate]
			if !ok {
				sum = &lineTax{Rate: t.Rate, Inclusive: t.Inclusive, Reason: t.Reason}
				sums[t.Rate] = sum
				order = append(order, t.Rate)
			}
			sum.Amount += t.Amount
			sum.Taxable += t.Taxable
		}
	}
	out := make([]any, 0, len(order))
	for _, id := range order {
		t := sums[id]
		out = append(out, obj{"amount": t.Amount, "inclusive": t.Inclusive, "tax_rate": t.Rate,
			"taxability_reason": t.Reason, "taxable_amount": t.Taxable})
	}
	return out
}
