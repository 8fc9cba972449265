package stripesim

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

// maxIntervalCount is Stripe's limit of one year between bills.
var maxIntervalCount = map[string]int64{"day": 365, "week": 52, "month": 12, "year": 1}

// priceMutable are the parameters a price update accepts; amount, currency, recurrence and product are immutable,
// so sending them is an unknown parameter, as Stripe answers.
var priceMutable = []string{"active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior",
	"currency_options"}

func (c *call) createPrice() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, "currency", "unit_amount", "product", "product_data", "recurring", "lookup_key",
		"transfer_lookup_key", "nickname", "tax_behavior", "active", "metadata")
	pr := &price{meta: c.nextMeta("price"), Active: true, TaxBehavior: "unspecified"}
	defer func() {
		if f.err != nil {
			c.st.seq--
		}
	}()
	cur, ok := f.str(p, "currency")
	if !ok {
		return nil, missingParam("currency")
	}
	if !currencyRE.MatchString(cur) {
		f.fail("currency", "Invalid currency: %s. Stripe currently supports these currencies: usd, eur, gbp, ...",
			cur)
	}
	pr.Currency = cur
	amount, ok := f.integer(p, "unit_amount")
	if !ok && f.err == nil {
		return nil, missingParam("unit_amount")
	}
	if amount < 0 || amount > 99999999 {
		f.fail("unit_amount", "Invalid integer: %d. unit_amount must be between 0 and 99999999.", amount)
	}
	pr.UnitAmount = amount
	prodID, ok := f.str(p, "product")
	var newProduct *product
	switch pd := p.get("product_data"); {
	case ok && pd != nil:
		f.fail("product", "You may only specify one of these parameters: product, product_data.")
	case pd != nil:
		if newProduct = c.productData(pd); f.err != nil {
			return nil, f.err
		}
		prodID = newProduct.ID
	case !ok && f.err == nil:
		return nil, missingParam("product")
	}
	if prod, exists := c.st.products[prodID]; f.err == nil && newProduct == nil && (!exists || prod.Deleted) {
		return nil, noSuch("product", "product", prodID)
	}
	pr.Product = prodID
	if rec := p.get("recurring"); rec != nil {
		f.unknownIn(rec, "recurring", "interval", "interval_count", "usage_type", "meter")
		r := &recurring{IntervalCount: 1, UsageType: "licensed"}
		iv, ok := f.enum(rec, "interval", "day", "week", "month", "year")
		if !ok && f.err == nil {
			return nil, missingParam("recurring[interval]")
		}
		r.Interval = iv
		if n, ok := f.integer(rec, "interval_count"); ok {
			r.IntervalCount = n
		}
		if r.IntervalCount < 1 || r.IntervalCount > maxIntervalCount[iv] {
			f.fail("recurring[interval_count]", "The maximum billing frequency is one year (1 year, 12 months, "+
				"52 weeks or 365 days).")
		}
		if ut, ok := f.enum(rec, "usage_type", "licensed", "metered"); ok {
			r.UsageType = ut
		}
		c.priceMeter(rec, r)
		pr.Recurring = r
	}
	transferFrom := c.priceMutableFields(pr)
	if f.err != nil {
		return nil, f.err
	}
	if transferFrom != nil {
		c.moveLookupKey(transferFrom)
	}
	if newProduct != nil {
		c.st.products[newProduct.ID] = newProduct
		c.emit("product.created", c.st.renderProduct(newProduct), nil)
	}
	c.st.prices[pr.ID] = pr
	out := c.st.renderPrice(pr)
	c.emit("price.created", out, nil)
	return out, nil
}

// priceMutableFields applies the fields both create and update accept. It returns the price whose lookup key moves
// to pr (transfer_lookup_key), for the caller to clear once the request has succeeded.
func (c *call) priceMutableFields(pr *price) (transferFrom *price) {
	f, p := &c.f, c.form
	if v := f.optStr(p, "nickname"); v != nil {
		pr.Nickname = nilIfEmpty(*v)
	}
	if v, ok := f.enum(p, "tax_behavior", "inclusive", "exclusive", "unspecified"); ok {
		if pr.TaxBehavior != "unspecified" && v != pr.TaxBehavior {
			f.fail("tax_behavior", "tax_behavior cannot be changed once it is set to inclusive or exclusive.")
		}
		pr.TaxBehavior = v
	}
	if v, ok := f.boolean(p, "active"); ok {
		if !v && pr.Active {
			if prod := c.st.products[pr.Product]; prod != nil && prod.DefaultPrice != nil &&
				*prod.DefaultPrice == pr.ID {
				f.fail("active", "This price cannot be archived because it is the default price of its product.")
			}
		}
		pr.Active = v
	}
	pr.Metadata = f.metadata(p, pr.Metadata)
	transfer, _ := f.boolean(p, "transfer_lookup_key")
	if v := f.optStr(p, "lookup_key"); v != nil {
		if len(*v) > 200 {
			f.fail("lookup_key", "Invalid lookup_key: must be at most 200 characters")
		}
		if *v != "" && f.err == nil {
			for _, other := range c.st.prices {
				if other.ID == pr.ID || other.LookupKey == nil || *other.LookupKey != *v {
					continue
				}
				if !transfer {
					f.err = &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest,
						Code: codeResourceExists, Param: "lookup_key", Message: "A price (`" + other.ID +
							"`) already uses that lookup key. Use transfer_lookup_key to move it to this price."}
					return nil
				}
				transferFrom = other
			}
		}
		pr.LookupKey = nilIfEmpty(*v)
	}
	return transferFrom
}

// moveLookupKey takes the lookup key from a price (transfer_lookup_key), which Stripe reports as price.updated.
func (c *call) moveLookupKey(from *price) {
	before := c.st.renderPrice(from)
	from.LookupKey = nil
	c.emitUpdate("price.updated", before, c.st.renderPrice(from))
}

func (c *call) price() (*price, *apiError) {
	pr, ok := c.st.prices[c.id]
	if !ok {
		return nil, noSuch("price", "id", c.id)
	}
	return pr, nil
}

func (c *call) getPrice() (any, *apiError) {
	c.f.unknown(c.form)
	pr, err := c.price()
	if err != nil {
		return nil, err
	}
	return c.st.renderPrice(pr), nil
}

func (c *call) updatePrice() (any, *apiError) {
	// Parameters are validated before the object is looked up, as Stripe does.
	if c.f.unknown(c.form, priceMutable...); c.f.err != nil {
		return nil, c.f.err
	}
	pr, err := c.price()
	if err != nil {
		return nil, err
	}
	next := *pr
	transferFrom := c.priceMutableFields(&next)
	if c.f.err != nil {
		return nil, c.f.err
	}
	if transferFrom != nil {
		c.moveLookupKey(transferFrom)
	}
	before := c.st.renderPrice(pr)
	*pr = next
	out := c.st.renderPrice(pr)
	c.emitUpdate("price.updated", before, out)
	return out, nil
}

func (c *call) listPrices() (any, *apiError) {
	c.listParams("active", "currency", "product", "type", "lookup_keys", "recurring")
	active, hasActive := c.f.boolean(c.form, "active")
	cur, hasCur := c.f.str(c.form, "currency")
	prod, hasProd := c.f.str(c.form, "product")
	typ, hasType := c.f.enum(c.form, "type", "one_time", "recurring")
	keys := map[string]bool{}
	for _, n := range c.form.get("lookup_keys").list() {
		if n.value != nil {
			keys[*n.value] = true
		}
	}
	var objs []*price
	for _, pr := range c.st.prices {
		isRecurring := pr.Recurring != nil
		if (hasActive && pr.Active != active) || (hasCur && pr.Currency != cur) || (hasProd && pr.Product != prod) ||
			(hasType && isRecurring != (typ == "recurring")) ||
			(len(keys) > 0 && (pr.LookupKey == nil || !keys[*pr.LookupKey])) {
			continue
		}
		objs = append(objs, pr)
	}
	return list(c, "/v1/prices", objs, c.st.renderPrice), nil
}

func (c *call) searchPrices() (any, *apiError) {
	return search(c, "/v1/prices/search", values(c.st.prices),
		[]string{"active", "currency", "lookup_key", "product", "type", "created"},
		func(pr *price) map[string]string {
			typ := "one_time"
			if pr.Recurring != nil {
				typ = "recurring"
			}
			return map[string]string{"active": strconv.FormatBool(pr.Active), "currency": pr.Currency,
				"lookup_key": deref(pr.LookupKey), "product": pr.Product, "type": typ,
				"created": strconv.FormatInt(pr.Created, 10)}
		}, c.st.renderPrice), nil
}

// productData makes the product of product_data on a price creation (stored by the caller once the price is made):
// name is required; active, id, metadata, statement_descriptor, tax_code and unit_label are accepted, as in
// 2023-10-16.
func (c *call) productData(pd *param) *product {
	f := &c.f
	f.unknownIn(pd, "product_data", "active", "id", "metadata", "name", "statement_descriptor", "tax_code",
		"unit_label")
	if f.err != nil {
		return nil
	}
	if _, ok := f.str(pd, "name"); !ok {
		f.err = missingParam("product_data[name]")
		return nil
	}
	prod := &product{meta: c.nextMeta("prod"), Active: true}
	prod.Updated = prod.Created
	if id, ok := f.str(pd, "id"); ok && id != "" {
		if _, exists := c.st.products[id]; exists {
			f.err = &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceExists,
				Param: "product_data[id]", Message: "Product already exists."}
			return nil
		}
		prod.ID = id
	}
	// The product's own validation, on product_data's fields, with the parameter named as sent.
	form := c.form
	c.form = &param{children: maps.Clone(pd.children),
		order: slices.DeleteFunc(slices.Clone(pd.order), func(k string) bool { return k == "id" })}
	delete(c.form.children, "id")
	c.productFields(prod, true)
	c.form = form
	if f.err != nil && f.err.Param != "" {
		f.err.Param = "product_data[" + f.err.Param + "]"
	}
	if f.err != nil {
		c.st.seq-- // the product's sequence number is not used
		return nil
	}
	return prod
}
