package stripesim

import (
	"strconv"
	"strings"
)

// customerParams are the parameters of a customer update; create also takes payment_method and test_clock.
var customerParams = []string{"email", "name", "description", "phone", "address", "metadata", "invoice_settings",
	"tax_exempt"}

func (c *call) customerFields(cu *customer, creating bool) {
	f, p := &c.f, c.form
	allowed := customerParams
	if creating {
		allowed = append(allowed[:len(allowed):len(allowed)], "payment_method", "test_clock", "tax_id_data")
	}
	f.unknown(p, allowed...)
	setStr := func(dst **string, name string, maxLen int) {
		v := f.optStr(p, name)
		if v == nil {
			return
		}
		if len(*v) > maxLen {
			f.fail(name, "Invalid %s: must be at most %d characters", name, maxLen)
		}
		*dst = nilIfEmpty(*v)
	}
	setStr(&cu.Email, "email", 512)
	setStr(&cu.Name, "name", 256)
	setStr(&cu.Description, "description", 350)
	setStr(&cu.Phone, "phone", 20)
	if cu.Email != nil && !strings.Contains(*cu.Email, "@") {
		f.fail("email", "Invalid email address: %s", *cu.Email)
	}
	if a := p.get("address"); a != nil {
		if a.value != nil && *a.value == "" {
			cu.Address = nil
		} else {
			f.unknownIn(a, "address", "line1", "line2", "city", "state", "postal_code", "country")
			addr := &address{}
			if cu.Address != nil {
				*addr = *cu.Address
			}
			for name, dst := range map[string]**string{"line1": &addr.Line1, "line2": &addr.Line2,
				"city": &addr.City, "state": &addr.State, "postal_code": &addr.PostalCode, "country": &addr.Country} {
				if v := f.optStr(a, name); v != nil {
					*dst = nilIfEmpty(*v)
				}
			}
			cu.Address = addr
		}
	}
	c.taxExempt(cu)
	cu.Metadata = f.metadata(p, cu.Metadata)
	var attach *paymentMethod
	if pm := f.optStr(p, "payment_method"); pm != nil && creating {
		if c.sim.opts.StrictPaymentMethods {
			attach = c.attachOnCreate(*pm)
		} else if !strings.HasPrefix(*pm, "pm_") && f.err == nil {
			f.err = noSuch("PaymentMethod", "payment_method", *pm)
		}
	}
	if is := p.get("invoice_settings"); is != nil {
		f.unknownIn(is, "invoice_settings", "default_payment_method")
		if pm := f.optStr(is, "default_payment_method"); pm != nil {
			id := *pm
			if id != "" {
				if attach != nil && (id == attach.ID || c.tokens[id] == attach) {
					id = attach.ID
				} else {
					id = c.defaultPaymentMethod("invoice_settings[default_payment_method]", id, cu.ID)
				}
			}
			cu.DefaultPaymentMethod = nilIfEmpty(id)
		}
	}
	c.attach = attach
	if creating {
		if tc := f.optStr(p, "test_clock"); tc != nil && *tc != "" {
			clock, ok := c.st.clocks[*tc]
			if !ok || clock.Deleted {
				if f.err == nil {
					f.err = noSuch("test_helpers.test_clock", "test_clock", *tc)
				}
				return
			}
			cu.TestClock = tc
			cu.Created, c.now = clock.FrozenTime, clock.FrozenTime
		}
	}
}

// taxExempt applies tax_exempt: none (stored as ""), exempt or reverse.
func (c *call) taxExempt(cu *customer) {
	v, ok := c.f.str(c.form, "tax_exempt")
	switch {
	case !ok:
	case v == "" || v == "none":
		cu.TaxExempt = ""
	case v == "exempt" || v == "reverse":
		cu.TaxExempt = v
	default:
		c.f.fail("tax_exempt", "Invalid tax_exempt: must be one of none, exempt, or reverse")
	}
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (c *call) createCustomer() (any, *apiError) {
	cu := &customer{meta: c.nextMeta("cus")}
	c.customerFields(cu, true)
	taxIDs := c.taxIDData()
	if c.f.err != nil {
		c.st.seq--
		return nil, c.f.err
	}
	c.st.customers[cu.ID] = cu
	out := c.st.renderCustomer(cu)
	c.emit("customer.created", out, nil)
	for _, t := range taxIDs {
		c.addTaxID(cu.ID, t.Type, t.Value, t.Country, t.Verification)
	}
	if pm := c.attach; pm != nil {
		pm.Customer = cu.ID
		c.st.paymentMethods[pm.ID] = pm
		c.emit("payment_method.attached", c.st.renderPaymentMethod(pm), nil)
	}
	return out, nil
}

func (c *call) customer(param string) (*customer, *apiError) {
	cu, ok := c.st.customers[c.id]
	if !ok {
		return nil, noSuch("customer", param, c.id)
	}
	return cu, nil
}

func (c *call) getCustomer() (any, *apiError) {
	c.f.unknown(c.form)
	cu, err := c.customer("id")
	if err != nil {
		return nil, err
	}
	return c.st.renderCustomer(cu), nil
}

func (c *call) updateCustomer() (any, *apiError) {
	// Parameters are validated before the object is looked up, as Stripe does.
	if c.f.unknown(c.form, customerParams...); c.f.err != nil {
		return nil, c.f.err
	}
	cu, err := c.customer("id")
	if err != nil {
		return nil, err
	}
	if cu.Deleted {
		return nil, noSuch("customer", "id", c.id)
	}
	c.now = c.st.clockTime(cu.ID, c.now) // objects on a test clock live at its time
	next := *cu
	c.customerFields(&next, false)
	if c.f.err != nil {
		return nil, c.f.err
	}
	before := c.st.renderCustomer(cu)
	*cu = next
	out := c.st.renderCustomer(cu)
	c.emitUpdate("customer.updated", before, out)
	return out, nil
}

// deleteCustomer deletes the customer for good, which cancels its subscriptions; the customer stays retrievable
// with deleted: true.
func (c *call) deleteCustomer() (any, *apiError) {
	c.f.unknown(c.form)
	cu, err := c.customer("id")
	if err != nil {
		return nil, err
	}
	if cu.Deleted {
		return nil, noSuch("customer", "id", c.id)
	}
	c.now = c.st.clockTime(cu.ID, c.now)
	for _, sub := range c.st.subscriptions {
		if sub.Customer == cu.ID && sub.Status != statusCanceled && sub.Status != statusIncompleteExpired {
			c.cancelNow(sub)
		}
	}
	c.emit("customer.deleted", c.st.renderCustomer(cu), nil)
	cu.Deleted = true
	return c.st.renderCustomer(cu), nil
}

func (c *call) listCustomers() (any, *apiError) {
	c.listParams("email", "test_clock")
	email, hasEmail := c.f.str(c.form, "email")
	clock, hasClock := c.f.str(c.form, "test_clock")
	var objs []*customer
	for _, cu := range c.st.customers {
		if cu.Deleted || (hasEmail && (cu.Email == nil || *cu.Email != email)) ||
			(hasClock && (cu.TestClock == nil || *cu.TestClock != clock)) {
			continue
		}
		objs = append(objs, cu)
	}
	return list(c, "/v1/customers", objs, c.st.renderCustomer), nil
}

func (c *call) searchCustomers() (any, *apiError) {
	var objs []*customer
	for _, cu := range c.st.customers {
		if !cu.Deleted {
			objs = append(objs, cu)
		}
	}
	return search(c, "/v1/customers/search", objs, []string{"email", "name", "phone", "created"},
		func(cu *customer) map[string]string {
			return map[string]string{"email": deref(cu.Email), "name": deref(cu.Name), "phone": deref(cu.Phone),
				"created": strconv.FormatInt(cu.Created, 10)}
		}, c.st.renderCustomer), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
