package stripesim

import (
	"net/http"
	"strconv"
	"strings"
)

// Coupons and promotion codes, with Stripe's rules: a coupon is a percent or an amount off, for once, some months
// or forever; only its name and metadata change after creation; a deleted coupon can no longer be redeemed but the
// discounts made from it keep working. A promotion code is a customer-facing code for a coupon; only one active code
// may have a given string (regardless of case); it cannot be deleted, only deactivated.

type coupon struct {
	meta
	Name             *string  `json:"name"`
	PercentOff       *float64 `json:"percent_off"`
	AmountOff        *int64   `json:"amount_off"`
	Currency         *string  `json:"currency"`
	Duration         string   `json:"duration"`
	DurationInMonths *int64   `json:"duration_in_months"`
	MaxRedemptions   *int64   `json:"max_redemptions"`
	RedeemBy         *int64   `json:"redeem_by"`
	// AppliesTo are the products the coupon is limited to; nil when it applies to every product.
	AppliesTo     []string `json:"applies_to"`
	TimesRedeemed int64    `json:"times_redeemed"`
	Deleted       bool     `json:"deleted"`
}

// valid says whether the coupon can still be redeemed at now.
func (cp *coupon) valid(now int64) bool {
	return !cp.Deleted && (cp.RedeemBy == nil || now < *cp.RedeemBy) &&
		(cp.MaxRedemptions == nil || cp.TimesRedeemed < *cp.MaxRedemptions)
}

type promotionCode struct {
	meta
	Code                  string  `json:"code"`
	Coupon                string  `json:"coupon"`
	Active                bool    `json:"active"`
	Customer              *string `json:"customer"`
	ExpiresAt             *int64  `json:"expires_at"`
	MaxRedemptions        *int64  `json:"max_redemptions"`
	FirstTimeTransaction  bool    `json:"first_time_transaction"`
	MinimumAmount         *int64  `json:"minimum_amount"`
	MinimumAmountCurrency *string `json:"minimum_amount_currency"`
	TimesRedeemed         int64   `json:"times_redeemed"`
}

// renderCoupon renders a coupon; applies_to is included only when expand[] asks for it, as Stripe does.
func (s *store) renderCoupon(cp *coupon) obj {
	return obj{
		"id": cp.ID, "object": "coupon", "amount_off": cp.AmountOff, "created": cp.Created, "currency": cp.Currency,
		"duration": cp.Duration, "duration_in_months": cp.DurationInMonths, "livemode": s.live,
		"max_redemptions": cp.MaxRedemptions, "metadata": metadataJSON(cp.Metadata), "name": cp.Name,
		"percent_off": cp.PercentOff, "redeem_by": cp.RedeemBy, "times_redeemed": cp.TimesRedeemed,
		"valid": cp.valid(s.now),
	}
}

func (s *store) renderPromotionCode(pc *promotionCode) obj {
	var cp any = pc.Coupon
	if c := s.coupons[pc.Coupon]; c != nil {
		cp = s.renderCoupon(c)
	}
	return obj{
		"id": pc.ID, "object": "promotion_code", "active": pc.Active, "code": pc.Code, "coupon": cp,
		"created": pc.Created, "customer": pc.Customer, "expires_at": pc.ExpiresAt, "livemode": s.live,
		"max_redemptions": pc.MaxRedemptions, "metadata": metadataJSON(pc.Metadata),
		"restrictions": obj{"currency_options": obj{}, "first_time_transaction": pc.FirstTimeTransaction,
			"minimum_amount": pc.MinimumAmount, "minimum_amount_currency": pc.MinimumAmountCurrency},
		"times_redeemed": pc.TimesRedeemed,
	}
}

// alnum reports an ASCII letter or digit.
func alnum(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' }

// validCouponID says whether a custom coupon ID has the characters and length Stripe allows.
func validCouponID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for _, r := range id {
		if !alnum(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func (c *call) createCoupon() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, "id", "name", "percent_off", "amount_off", "currency", "duration", "duration_in_months",
		"max_redemptions", "redeem_by", "applies_to", "metadata")
	cp := &coupon{meta: c.nextMeta("cpn"), Duration: "once"}
	defer func() {
		if f.err != nil {
			c.st.seq--
		}
	}()
	cp.ID = c.sim.newID("")[1:9] // Stripe's generated coupon IDs are 8 characters
	if id, ok := f.str(p, "id"); ok {
		if !validCouponID(id) {
			f.fail("id", "Invalid id: coupon IDs may contain letters, digits, '-' and '_', up to 200 characters.")
		}
		if old, exists := c.st.coupons[id]; exists && !old.Deleted && f.err == nil {
			f.err = &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceExists,
				Param: "id", Message: "Coupon already exists."}
			return nil, f.err
		}
		cp.ID = id
	}
	if v := f.optStr(p, "name"); v != nil {
		if len(*v) > 40 {
			f.fail("name", "Invalid name: must be at most 40 characters")
		}
		cp.Name = nilIfEmpty(*v)
	}
	c.couponDiscount(cp)
	c.couponLimits(cp)
	cp.Metadata = f.metadata(p, cp.Metadata)
	if f.err != nil {
		return nil, f.err
	}
	c.st.coupons[cp.ID] = cp
	out := c.st.renderCoupon(cp)
	c.emit("coupon.created", out, nil)
	return out, nil
}

// couponDiscount reads what a new coupon takes off: percent_off, or amount_off with its currency.
func (c *call) couponDiscount(cp *coupon) {
	f, p := &c.f, c.form
	pctStr, hasPct := f.str(p, "percent_off")
	amount, hasAmount := f.integer(p, "amount_off")
	switch {
	case hasPct && hasAmount:
		f.fail("percent_off", "You may only specify one of these parameters: amount_off, percent_off.")
	case !hasPct && !hasAmount:
		if f.err == nil {
			f.err = invalidRequest("You must specify either percent_off or amount_off.")
		}
	case hasPct:
		pct, err := strconv.ParseFloat(pctStr, 64)
		if err != nil || pct <= 0 || pct > 100 {
			f.fail("percent_off", "Invalid percent_off: must be greater than 0 and at most 100.")
		}
		cp.PercentOff = &pct
	case hasAmount:
		if amount < 1 {
			f.fail("amount_off", "Invalid amount_off: must be at least 1.")
		}
		cp.AmountOff = &amount
	}
	cur, hasCur := f.str(p, "currency")
	switch {
	case hasAmount && !hasCur:
		f.fail("currency", "You must specify a currency when creating an amount_off coupon.")
	case hasCur && !currencyRE.MatchString(cur):
		f.fail("currency", "Invalid currency: %s. Stripe currently supports these currencies: usd, eur, gbp, ...",
			cur)
	case hasCur:
		cp.Currency = &cur
	}
}

// couponLimits reads how long and how often a new coupon applies: duration, max_redemptions, redeem_by,
// applies_to.
func (c *call) couponLimits(cp *coupon) {
	f, p := &c.f, c.form
	if v, ok := f.enum(p, "duration", "once", "repeating", "forever"); ok {
		cp.Duration = v
	}
	months, hasMonths := f.integer(p, "duration_in_months")
	switch {
	case cp.Duration == "repeating" && !hasMonths:
		f.fail("duration_in_months", "You must specify duration_in_months when duration is repeating.")
	case cp.Duration != "repeating" && hasMonths:
		f.fail("duration_in_months", "duration_in_months can only be set when duration is repeating.")
	case hasMonths && months < 1:
		f.fail("duration_in_months", "Invalid duration_in_months: must be at least 1.")
	case hasMonths:
		cp.DurationInMonths = &months
	}
	if n, ok := f.integer(p, "max_redemptions"); ok {
		if n < 1 {
			f.fail("max_redemptions", "Invalid max_redemptions: must be at least 1.")
		}
		cp.MaxRedemptions = &n
	}
	if n, ok := f.integer(p, "redeem_by"); ok {
		if n <= c.now {
			f.fail("redeem_by", "Invalid redeem_by: must be in the future.")
		}
		cp.RedeemBy = &n
	}
	if at := p.get("applies_to"); at != nil {
		f.unknownIn(at, "applies_to", "products")
		cp.AppliesTo = []string{}
		for i, n := range at.get("products").list() {
			param := "applies_to[products][" + strconv.Itoa(i) + "]"
			if n.value == nil {
				f.fail(param, "Invalid string: {...}")
				break
			}
			if pr, ok := c.st.products[*n.value]; (!ok || pr.Deleted) && f.err == nil {
				f.err = noSuch("product", param, *n.value)
			}
			cp.AppliesTo = append(cp.AppliesTo, *n.value)
		}
	}
}

// coupon is the coupon the path names; a deleted coupon is gone, as Stripe answers.
func (c *call) coupon() (*coupon, *apiError) {
	cp, ok := c.st.coupons[c.id]
	if !ok || cp.Deleted {
		return nil, noSuch("coupon", "id", c.id)
	}
	return cp, nil
}

func (c *call) getCoupon() (any, *apiError) {
	c.f.unknown(c.form)
	cp, err := c.coupon()
	if err != nil {
		return nil, err
	}
	return c.st.renderCoupon(cp), nil
}

// updateCoupon changes name and metadata, the only fields Stripe lets change: any other is an unknown parameter,
// as Stripe answers.
func (c *call) updateCoupon() (any, *apiError) {
	f, p := &c.f, c.form
	if f.unknown(p, "name", "metadata"); f.err != nil {
		return nil, f.err
	}
	cp, err := c.coupon()
	if err != nil {
		return nil, err
	}
	next := *cp
	if v := f.optStr(p, "name"); v != nil {
		if len(*v) > 40 {
			f.fail("name", "Invalid name: must be at most 40 characters")
		}
		next.Name = nilIfEmpty(*v)
	}
	next.Metadata = f.metadata(p, cp.Metadata)
	if f.err != nil {
		return nil, f.err
	}
	before := c.st.renderCoupon(cp)
	*cp = next
	out := c.st.renderCoupon(cp)
	c.emitUpdate("coupon.updated", before, out)
	return out, nil
}

// deleteCoupon deletes a coupon: it can no longer be redeemed, and discounts made from it keep working.
func (c *call) deleteCoupon() (any, *apiError) {
	c.f.unknown(c.form)
	cp, err := c.coupon()
	if err != nil {
		return nil, err
	}
	c.emit("coupon.deleted", c.st.renderCoupon(cp), nil)
	cp.Deleted = true
	return obj{"id": cp.ID, "object": "coupon", "deleted": true}, nil
}

func (c *call) listCoupons() (any, *apiError) {
	c.listParams()
	var objs []*coupon
	for _, cp := range c.st.coupons {
		if !cp.Deleted {
			objs = append(objs, cp)
		}
	}
	return list(c, "/v1/coupons", objs, func(cp *coupon) obj { return c.st.renderCoupon(cp) }), nil
}

// activeCode returns the active promotion code with code (regardless of case) other than except, or nil.
func (s *store) activeCode(code, except string) *promotionCode {
	for _, pc := range s.promotionCodes {
		if pc.Active && pc.ID != except && strings.EqualFold(pc.Code, code) {
			return pc
		}
	}
	return nil
}

func codeTaken(code string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceExists,
		Param: "code", Message: "An active promotion code with `code: " + code + "` already exists."}
}

func (c *call) createPromotionCode() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, "coupon", "code", "active", "customer", "expires_at", "max_redemptions", "restrictions",
		"metadata")
	pc := &promotionCode{meta: c.nextMeta("promo"), Active: true}
	defer func() {
		if f.err != nil {
			c.st.seq--
		}
	}()
	couponID, ok := f.str(p, "coupon")
	if !ok {
		if f.err == nil {
			f.err = missingParam("coupon")
		}
		return nil, f.err
	}
	if cp, exists := c.st.coupons[couponID]; !exists || cp.Deleted {
		return nil, noSuch("coupon", "coupon", couponID)
	}
	pc.Coupon = couponID
	pc.Code = strings.ToUpper(c.sim.newID("")[1:9])
	if v, ok := f.str(p, "code"); ok {
		if v == "" || len(v) > 500 || strings.IndexFunc(v, func(r rune) bool { return !alnum(r) }) >= 0 {
			f.fail("code", "Invalid code: promotion codes may contain only letters and digits.")
		}
		pc.Code = v
	}
	if v, ok := f.boolean(p, "active"); ok {
		pc.Active = v
	}
	if v := f.optStr(p, "customer"); v != nil && *v != "" {
		if cu, exists := c.st.customers[*v]; (!exists || cu.Deleted) && f.err == nil {
			f.err = noSuch("customer", "customer", *v)
		}
		pc.Customer = v
	}
	if n, ok := f.integer(p, "expires_at"); ok {
		if n <= c.now {
			f.fail("expires_at", "Invalid expires_at: must be in the future.")
		}
		if cp := c.st.coupons[couponID]; cp.RedeemBy != nil && n > *cp.RedeemBy {
			f.fail("expires_at", "The promotion code's expires_at cannot be after its coupon's redeem_by.")
		}
		pc.ExpiresAt = &n
	}
	if n, ok := f.integer(p, "max_redemptions"); ok {
		if n < 1 {
			f.fail("max_redemptions", "Invalid max_redemptions: must be at least 1.")
		}
		pc.MaxRedemptions = &n
	}
	c.promotionCodeRestrictions(pc)
	pc.Metadata = f.metadata(p, pc.Metadata)
	if f.err != nil {
		return nil, f.err
	}
	if pc.Active && c.st.activeCode(pc.Code, "") != nil {
		f.err = codeTaken(pc.Code)
		return nil, f.err
	}
	c.st.promotionCodes[pc.ID] = pc
	out := c.st.renderPromotionCode(pc)
	c.emit("promotion_code.created", out, nil)
	return out, nil
}

// promotionCodeRestrictions reads a new promotion code's restrictions.
func (c *call) promotionCodeRestrictions(pc *promotionCode) {
	f, r := &c.f, c.form.get("restrictions")
	if r == nil {
		return
	}
	f.unknownIn(r, "restrictions", "first_time_transaction", "minimum_amount", "minimum_amount_currency")
	if v, ok := f.boolean(r, "first_time_transaction"); ok {
		pc.FirstTimeTransaction = v
	}
	amount, hasAmount := f.integer(r, "minimum_amount")
	cur, hasCur := f.str(r, "minimum_amount_currency")
	switch {
	case hasAmount != hasCur:
		f.fail("restrictions[minimum_amount_currency]",
			"minimum_amount and minimum_amount_currency must be specified together.")
	case hasAmount:
		pc.MinimumAmount, pc.MinimumAmountCurrency = &amount, &cur
	}
}

func (c *call) promotionCode() (*promotionCode, *apiError) {
	pc, ok := c.st.promotionCodes[c.id]
	if !ok {
		return nil, noSuch("promotion_code", "id", c.id)
	}
	return pc, nil
}

func (c *call) getPromotionCode() (any, *apiError) {
	c.f.unknown(c.form)
	pc, err := c.promotionCode()
	if err != nil {
		return nil, err
	}
	return c.st.renderPromotionCode(pc), nil
}

// updatePromotionCode changes active and metadata, the fields Stripe lets change (restrictions take only
// currency_options, which stripesim does not model): others are unknown parameters, as Stripe answers.
func (c *call) updatePromotionCode() (any, *apiError) {
	f, p := &c.f, c.form
	if f.unknown(p, "active", "metadata"); f.err != nil {
		return nil, f.err
	}
	pc, err := c.promotionCode()
	if err != nil {
		return nil, err
	}
	next := *pc
	if v, ok := f.boolean(p, "active"); ok {
		next.Active = v
	}
	next.Metadata = f.metadata(p, pc.Metadata)
	if f.err != nil {
		return nil, f.err
	}
	if next.Active && !pc.Active {
		if cp := c.st.coupons[pc.Coupon]; cp == nil || cp.Deleted {
			return nil, invalidParam("active", "This promotion code cannot be reactivated because its coupon "+
				"has been deleted.")
		}
		if c.st.activeCode(pc.Code, pc.ID) != nil {
			return nil, codeTaken(pc.Code)
		}
	}
	before := c.st.renderPromotionCode(pc)
	*pc = next
	out := c.st.renderPromotionCode(pc)
	c.emitUpdate("promotion_code.updated", before, out)
	return out, nil
}

func (c *call) listPromotionCodes() (any, *apiError) {
	c.listParams("active", "code", "coupon", "customer")
	active, hasActive := c.f.boolean(c.form, "active")
	code, hasCode := c.f.str(c.form, "code")
	couponID, hasCoupon := c.f.str(c.form, "coupon")
	cust, hasCust := c.f.str(c.form, "customer")
	var objs []*promotionCode
	for _, pc := range c.st.promotionCodes {
		if (hasActive && pc.Active != active) || (hasCode && !strings.EqualFold(pc.Code, code)) ||
			(hasCoupon && pc.Coupon != couponID) || (hasCust && (pc.Customer == nil || *pc.Customer != cust)) {
			continue
		}
		objs = append(objs, pc)
	}
	return list(c, "/v1/promotion_codes", objs, func(pc *promotionCode) obj {
		return c.st.renderPromotionCode(pc)
	}), nil
}
