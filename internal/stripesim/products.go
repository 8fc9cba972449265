package stripesim

import (
	"net/http"
	"regexp"
	"strconv"
)

var (
	statementDescriptorRE = regexp.MustCompile(`^[^<>\\'"*]{5,22}$`)
	taxCodeRE             = regexp.MustCompile(`^txcd_[0-9]{8}$`)
)

// productUpdateParams are the parameters of a product update; create takes them all but default_price (last).
var productUpdateParams = []string{"name", "description", "active", "metadata", "tax_code", "unit_label",
	"statement_descriptor", "default_price"}

func (c *call) productFields(pr *product, creating bool) {
	f, p := &c.f, c.form
	allowed := productUpdateParams
	if creating {
		allowed = productUpdateParams[:len(productUpdateParams)-1]
	}
	f.unknown(p, allowed...)
	if v, ok := f.str(p, "name"); ok {
		if v == "" {
			f.fail("name", "You must provide a non-empty name.")
		}
		pr.Name = v
	} else if creating {
		if f.err == nil {
			f.err = missingParam("name")
		}
	}
	if v := f.optStr(p, "description"); v != nil {
		pr.Description = nilIfEmpty(*v)
	}
	if v, ok := f.boolean(p, "active"); ok {
		pr.Active = v
	}
	if v := f.optStr(p, "tax_code"); v != nil {
		if *v != "" && !taxCodeRE.MatchString(*v) {
			f.fail("tax_code", "Invalid tax code: %s", *v)
		}
		pr.TaxCode = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "unit_label"); v != nil {
		if len(*v) > 12 {
			f.fail("unit_label", "Invalid unit_label: must be at most 12 characters")
		}
		pr.UnitLabel = nilIfEmpty(*v)
	}
	if v := f.optStr(p, "statement_descriptor"); v != nil {
		if *v != "" && !statementDescriptorRE.MatchString(*v) {
			f.fail("statement_descriptor", "The statement descriptor must be 5-22 characters and cannot contain "+
				"any of the special characters < > \\ ' \" *")
		}
		pr.StatementDescriptor = nilIfEmpty(*v)
	}
	pr.Metadata = f.metadata(p, pr.Metadata)
	if v := f.optStr(p, "default_price"); v != nil && f.err == nil {
		if *v == "" {
			pr.DefaultPrice = nil
			return
		}
		dp, ok := c.st.prices[*v]
		switch {
		case !ok:
			f.err = noSuch("price", "default_price", *v)
		case dp.Product != pr.ID:
			f.fail("default_price", "The price '%s' does not belong to this product.", *v)
		case !dp.Active:
			f.fail("default_price", "The price '%s' is archived and cannot be the default price.", *v)
		default:
			pr.DefaultPrice = v
		}
	}
}

func (c *call) createProduct() (any, *apiError) {
	pr := &product{meta: c.nextMeta("prod"), Active: true}
	pr.Updated = pr.Created
	c.productFields(pr, true)
	if c.f.err != nil {
		c.st.seq--
		return nil, c.f.err
	}
	c.st.products[pr.ID] = pr
	out := c.st.renderProduct(pr)
	c.emit("product.created", out, nil)
	return out, nil
}

func (c *call) product() (*product, *apiError) {
	pr, ok := c.st.products[c.id]
	if !ok || pr.Deleted {
		return nil, noSuch("product", "id", c.id)
	}
	return pr, nil
}

func (c *call) getProduct() (any, *apiError) {
	c.f.unknown(c.form)
	pr, err := c.product()
	if err != nil {
		return nil, err
	}
	return c.st.renderProduct(pr), nil
}

func (c *call) updateProduct() (any, *apiError) {
	if c.f.unknown(c.form, productUpdateParams...); c.f.err != nil {
		return nil, c.f.err
	}
	pr, err := c.product()
	if err != nil {
		return nil, err
	}
	next := *pr
	c.productFields(&next, false)
	if c.f.err != nil {
		return nil, c.f.err
	}
	before := c.st.renderProduct(pr)
	next.Updated = pr.Updated
	*pr = next
	if changedAttributes(before, c.st.renderProduct(pr)) != nil {
		pr.Updated = c.now
	}
	out := c.st.renderProduct(pr)
	c.emitUpdate("product.updated", before, out)
	return out, nil
}

// deleteProduct deletes a product that has no prices; one with prices can only be archived.
func (c *call) deleteProduct() (any, *apiError) {
	c.f.unknown(c.form)
	pr, err := c.product()
	if err != nil {
		return nil, err
	}
	for _, p := range c.st.prices {
		if p.Product == pr.ID {
			return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest,
				Message: "This product cannot be deleted because it has one or more user-created prices."}
		}
	}
	c.emit("product.deleted", c.st.renderProduct(pr), nil)
	pr.Deleted = true
	return c.st.renderProduct(pr), nil
}

func (c *call) listProducts() (any, *apiError) {
	c.listParams("active", "ids")
	active, hasActive := c.f.boolean(c.form, "active")
	ids := map[string]bool{}
	for _, n := range c.form.get("ids").list() {
		if n.value != nil {
			ids[*n.value] = true
		}
	}
	var objs []*product
	for _, pr := range c.st.products {
		if pr.Deleted || (hasActive && pr.Active != active) || (len(ids) > 0 && !ids[pr.ID]) {
			continue
		}
		objs = append(objs, pr)
	}
	return list(c, "/v1/products", objs, c.st.renderProduct), nil
}

func (c *call) searchProducts() (any, *apiError) {
	var objs []*product
	for _, pr := range c.st.products {
		if !pr.Deleted {
			objs = append(objs, pr)
		}
	}
	return search(c, "/v1/products/search", objs, []string{"active", "name", "description", "created"},
		func(pr *product) map[string]string {
			return map[string]string{"active": strconv.FormatBool(pr.Active), "name": pr.Name,
				"description": deref(pr.Description), "created": strconv.FormatInt(pr.Created, 10)}
		}, c.st.renderProduct), nil
}
