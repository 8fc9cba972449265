package stripesim

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Customer portal configurations (billing_portal.configuration). They are created and updated, never deleted; an
// inactive configuration cannot start portal sessions. The account's default configuration is the one saved in the
// Dashboard's portal settings (SaveDashboardPortalSettings here): it cannot be deactivated. A configuration created
// through the API is not the default.

type portalProduct struct {
	Product string   `json:"product"`
	Prices  []string `json:"prices"`
}

type portalConfig struct {
	meta
	Active              bool            `json:"active"`
	IsDefault           bool            `json:"is_default"`
	Updated             int64           `json:"updated"`
	Headline            *string         `json:"headline"`
	PrivacyPolicyURL    *string         `json:"privacy_policy_url"`
	TermsOfServiceURL   *string         `json:"terms_of_service_url"`
	DefaultReturnURL    *string         `json:"default_return_url"`
	LoginPage           bool            `json:"login_page"`
	CustomerUpdate      bool            `json:"customer_update"`
	AllowedUpdates      []string        `json:"allowed_updates"`
	InvoiceHistory      bool            `json:"invoice_history"`
	PaymentMethodUpdate bool            `json:"payment_method_update"`
	CancelEnabled       bool            `json:"cancel_enabled"`
	CancelMode          string          `json:"cancel_mode"`
	CancelProration     string          `json:"cancel_proration"`
	CancelReason        bool            `json:"cancel_reason"`
	CancelReasonOptions []string        `json:"cancel_reason_options"`
	PauseEnabled        bool            `json:"pause_enabled"`
	UpdateEnabled       bool            `json:"update_enabled"`
	UpdateAllowed       []string        `json:"update_allowed"`
	UpdateProration     string          `json:"update_proration"`
	UpdateProducts      []portalProduct `json:"update_products"`
}

var (
	portalAllowedUpdates = []string{"address", "email", "name", "phone", "shipping", "tax_id"}
	portalDefaultAllowed = []string{"price", "promotion_code", "quantity"}
	portalProrations     = []string{"always_invoice", "create_prorations", "none"}
	portalCancelModes    = []string{"at_period_end", "immediately"}
	portalCancelReasons  = []string{"customer_service", "low_quality", "missing_features", "other",
		"switched_service", "too_complex", "too_expensive", "unused"}
	portalFeatureParams = []string{"customer_update", "invoice_history", "payment_method_update",
		"subscription_cancel", "subscription_pause", "subscription_update"}
	portalTopLevelParams  = []string{"business_profile", "default_return_url", "features", "login_page", "metadata"}
	portalBusinessProfile = []string{"headline", "privacy_policy_url", "terms_of_service_url"}
)

func (s *store) renderPortalConfig(pc *portalConfig) obj {
	products := make([]any, 0, len(pc.UpdateProducts))
	for _, p := range pc.UpdateProducts {
		products = append(products, obj{"product": p.Product, "prices": slices.Clone(p.Prices)})
	}
	var loginURL any
	if pc.LoginPage {
		loginURL = "https://billing.stripe.com/p/login/test_" + pc.ID[len("bpc_"):]
	}
	return obj{"id": pc.ID, "object": "billing_portal.configuration", "active": pc.Active, "application": nil,
		"business_profile": obj{"headline": pc.Headline, "privacy_policy_url": pc.PrivacyPolicyURL,
			"terms_of_service_url": pc.TermsOfServiceURL},
		"created": pc.Created, "default_return_url": pc.DefaultReturnURL,
		"features": obj{
			"customer_update":       obj{"allowed_updates": nonNil(pc.AllowedUpdates), "enabled": pc.CustomerUpdate},
			"invoice_history":       obj{"enabled": pc.InvoiceHistory},
			"payment_method_update": obj{"enabled": pc.PaymentMethodUpdate},
			"subscription_cancel": obj{"cancellation_reason": obj{"enabled": pc.CancelReason,
				"options": nonNil(pc.CancelReasonOptions)}, "enabled": pc.CancelEnabled, "mode": pc.CancelMode,
				"proration_behavior": pc.CancelProration},
			"subscription_pause": obj{"enabled": pc.PauseEnabled},
			"subscription_update": obj{"default_allowed_updates": nonNil(pc.UpdateAllowed),
				"enabled": pc.UpdateEnabled, "products": products, "proration_behavior": pc.UpdateProration},
		},
		"is_default": pc.IsDefault, "livemode": s.live,
		"login_page": obj{"enabled": pc.LoginPage, "url": loginURL},
		"metadata":   metadataJSON(pc.Metadata), "updated": pc.Updated}
}

// nonNil renders a nil list as [].
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// portalURL checks a URL parameter as Stripe does: an absolute http or https URL.
func (c *call) portalURL(p *param, name, path string) *string {
	v := c.f.optStr(p, name)
	if v == nil || *v == "" {
		return v
	}
	u, err := url.Parse(*v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.f.fail(path, "Not a valid URL")
	}
	return v
}

// enumList reads an array of enum values, or "" for none.
func (c *call) enumList(p *param, name, path string, allowed []string) ([]string, bool) {
	n := p.get(name)
	if n == nil {
		return nil, false
	}
	if n.value != nil {
		if *n.value != "" {
			c.f.fail(path, "Invalid array")
		}
		return []string{}, true
	}
	out := []string{}
	for i, item := range n.list() {
		ip := path + "[" + strconv.Itoa(i) + "]"
		switch {
		case item.value == nil:
			c.f.fail(ip, "Invalid string: {...}")
		case !slices.Contains(allowed, *item.value):
			c.f.fail(ip, "Invalid %s[%d]: must be one of %s", name, i, strings.Join(allowed, ", "))
		case !slices.Contains(out, *item.value):
			out = append(out, *item.value)
		}
	}
	return out, true
}

// portalRequired fails with Stripe's missing-parameter error when the hash at path lacks one of names.
func (c *call) portalRequired(p *param, path string, names ...string) {
	for _, n := range names {
		if p.get(n) == nil && c.f.err == nil {
			c.f.err = missingParam(path + "[" + n + "]")
		}
	}
}

// portalFields applies the parameters create and update share. creating applies the create rules: the features'
// enabled flags (and subscription_update's products and default_allowed_updates) are required.
func (c *call) portalFields(pc *portalConfig, creating bool) {
	f, p := &c.f, c.form
	if bp := p.get("business_profile"); bp != nil {
		f.unknownIn(bp, "business_profile", portalBusinessProfile...)
		if v := f.optStr(bp, "headline"); v != nil {
			if len(*v) > 60 {
				f.fail("business_profile[headline]", "Invalid string: %s...; must be at most 60 characters", (*v)[:60])
			}
			pc.Headline = nilIfEmpty(*v)
		}
		if v := c.portalURL(bp, "privacy_policy_url", "business_profile[privacy_policy_url]"); v != nil {
			pc.PrivacyPolicyURL = nilIfEmpty(*v)
		}
		if v := c.portalURL(bp, "terms_of_service_url", "business_profile[terms_of_service_url]"); v != nil {
			pc.TermsOfServiceURL = nilIfEmpty(*v)
		}
	}
	if v := c.portalURL(p, "default_return_url", "default_return_url"); v != nil {
		pc.DefaultReturnURL = nilIfEmpty(*v)
	}
	if lp := p.get("login_page"); lp != nil {
		f.unknownIn(lp, "login_page", "enabled")
		c.portalRequired(lp, "login_page", "enabled")
		pc.LoginPage, _ = f.boolean(lp, "enabled")
	}
	pc.Metadata = f.metadata(p, pc.Metadata)
	feats := p.get("features")
	if feats == nil {
		return
	}
	f.unknownIn(feats, "features", portalFeatureParams...)
	if cu := feats.get("customer_update"); cu != nil {
		f.unknownIn(cu, "features[customer_update]", "allowed_updates", "enabled")
		if creating {
			c.portalRequired(cu, "features[customer_update]", "enabled")
		}
		if v, ok := f.boolean(cu, "enabled"); ok {
			pc.CustomerUpdate = v
		}
		if l, ok := c.enumList(cu, "allowed_updates", "features[customer_update][allowed_updates]",
			portalAllowedUpdates); ok {
			pc.AllowedUpdates = l
		}
	}
	for _, t := range []struct {
		name string
		to   *bool
	}{{"invoice_history", &pc.InvoiceHistory}, {"payment_method_update", &pc.PaymentMethodUpdate},
		{"subscription_pause", &pc.PauseEnabled}} {
		if n := feats.get(t.name); n != nil {
			f.unknownIn(n, "features["+t.name+"]", "enabled")
			if t.name != "subscription_pause" {
				c.portalRequired(n, "features["+t.name+"]", "enabled")
			}
			if v, ok := f.boolean(n, "enabled"); ok {
				*t.to = v
			}
		}
	}
	if sc := feats.get("subscription_cancel"); sc != nil {
		path := "features[subscription_cancel]"
		f.unknownIn(sc, path, "cancellation_reason", "enabled", "mode", "proration_behavior")
		if creating {
			c.portalRequired(sc, path, "enabled")
		}
		if v, ok := f.boolean(sc, "enabled"); ok {
			pc.CancelEnabled = v
		}
		if v, ok := f.enum(sc, "mode", portalCancelModes...); ok {
			pc.CancelMode = v
		}
		if v, ok := f.enum(sc, "proration_behavior", portalProrations...); ok {
			pc.CancelProration = v
		}
		if cr := sc.get("cancellation_reason"); cr != nil {
			f.unknownIn(cr, path+"[cancellation_reason]", "enabled", "options")
			c.portalRequired(cr, path+"[cancellation_reason]", "enabled")
			if creating {
				c.portalRequired(cr, path+"[cancellation_reason]", "options")
			}
			pc.CancelReason, _ = f.boolean(cr, "enabled")
			if l, ok := c.enumList(cr, "options", path+"[cancellation_reason][options]", portalCancelReasons); ok {
				pc.CancelReasonOptions = l
			}
		}
	}
	if su := feats.get("subscription_update"); su != nil {
		c.portalSubscriptionUpdate(pc, su, creating)
	}
}

// portalSubscriptionUpdate applies features[subscription_update]: every product must exist, and every price must
// exist, be recurring and belong to its product.
func (c *call) portalSubscriptionUpdate(pc *portalConfig, su *param, creating bool) {
	f, path := &c.f, "features[subscription_update]"
	f.unknownIn(su, path, "default_allowed_updates", "enabled", "products", "proration_behavior")
	if creating {
		c.portalRequired(su, path, "default_allowed_updates", "enabled", "products")
	}
	if v, ok := f.boolean(su, "enabled"); ok {
		pc.UpdateEnabled = v
	}
	if l, ok := c.enumList(su, "default_allowed_updates", path+"[default_allowed_updates]",
		portalDefaultAllowed); ok {
		pc.UpdateAllowed = l
	}
	if v, ok := f.enum(su, "proration_behavior", portalProrations...); ok {
		pc.UpdateProration = v
	}
	if n := su.get("products"); n != nil {
		pc.UpdateProducts = nil
		if n.value != nil && *n.value != "" {
			f.fail(path+"[products]", "Invalid array")
		}
		if len(n.list()) > 10 {
			f.fail(path+"[products]", "You can specify up to 10 products.")
		}
		for i, item := range n.list() {
			ip := path + "[products][" + strconv.Itoa(i) + "]"
			f.unknownIn(item, ip, "prices", "product")
			c.portalRequired(item, ip, "prices", "product")
			prod, _ := f.str(item, "product")
			if pr := c.st.products[prod]; (pr == nil || pr.Deleted) && f.err == nil {
				f.err = noSuch("product", ip+"[product]", prod)
			}
			pp := portalProduct{Product: prod}
			for j, pn := range item.get("prices").list() {
				jp := ip + "[prices][" + strconv.Itoa(j) + "]"
				if pn.value == nil {
					f.fail(jp, "Invalid string: {...}")
					continue
				}
				id := *pn.value
				pr := c.st.prices[id]
				switch {
				case pr == nil:
					if f.err == nil {
						f.err = noSuch("price", jp, id)
					}
				case pr.Product != prod:
					f.fail(jp, "The price %s does not belong to the product %s.", id, prod)
				case pr.Recurring == nil:
					f.fail(jp, "The price %s is not a recurring price. Only recurring prices can be used for "+
						"subscription updates.", id)
				}
				pp.Prices = append(pp.Prices, id)
			}
			if len(pp.Prices) == 0 {
				f.fail(ip+"[prices]", "You must specify at least one price for the product %s.", prod)
			}
			if slices.ContainsFunc(pc.UpdateProducts, func(o portalProduct) bool { return o.Product == prod }) {
				f.fail(ip+"[product]", "The product %s was given more than once.", prod)
			}
			pc.UpdateProducts = append(pc.UpdateProducts, pp)
		}
	}
	if pc.UpdateEnabled && len(pc.UpdateProducts) == 0 {
		f.fail(path+"[products]", "You must specify at least one product when subscription updates are enabled.")
	}
}

func (c *call) createPortalConfig() (any, *apiError) {
	f, p := &c.f, c.form
	if f.unknown(p, portalTopLevelParams...); f.err != nil {
		return nil, f.err
	}
	for _, req := range []string{"business_profile", "features"} {
		if p.get(req) == nil {
			return nil, missingParam(req)
		}
	}
	pc := &portalConfig{meta: c.nextMeta("bpc"), Active: true, CancelMode: "at_period_end",
		CancelProration: "none", UpdateProration: "none"}
	pc.Updated = pc.Created
	c.portalFields(pc, true)
	if f.err != nil {
		c.st.seq--
		return nil, f.err
	}
	c.st.portalConfigs[pc.ID] = pc
	out := c.st.renderPortalConfig(pc)
	c.emit("billing_portal.configuration.created", out, nil)
	return out, nil
}

func (c *call) portalConfig() (*portalConfig, *apiError) {
	pc, ok := c.st.portalConfigs[c.id]
	if !ok {
		return nil, noSuch("billing_portal.configuration", "configuration", c.id)
	}
	return pc, nil
}

func (c *call) getPortalConfig() (any, *apiError) {
	c.f.unknown(c.form)
	pc, err := c.portalConfig()
	if err != nil {
		return nil, err
	}
	return c.st.renderPortalConfig(pc), nil
}

func (c *call) updatePortalConfig() (any, *apiError) {
	if c.f.unknown(c.form, append([]string{"active"}, portalTopLevelParams...)...); c.f.err != nil {
		return nil, c.f.err
	}
	pc, err := c.portalConfig()
	if err != nil {
		return nil, err
	}
	next := *pc
	next.Metadata = pc.Metadata
	if v, ok := c.f.boolean(c.form, "active"); ok {
		if !v && pc.IsDefault {
			c.f.fail("active", "You cannot deactivate the default configuration.")
		}
		next.Active = v
	}
	c.portalFields(&next, false)
	if c.f.err != nil {
		return nil, c.f.err
	}
	before := c.st.renderPortalConfig(pc)
	next.Updated = c.now
	if changedAttributes(before, c.st.renderPortalConfig(&next)) == nil {
		next.Updated = pc.Updated
	}
	*pc = next
	out := c.st.renderPortalConfig(pc)
	c.emitUpdate("billing_portal.configuration.updated", before, out)
	return out, nil
}

func (c *call) listPortalConfigs() (any, *apiError) {
	// Stripe lists portal configurations without a created filter.
	c.f.unknown(c.form, "limit", "starting_after", "ending_before", "active", "is_default")
	active, hasActive := c.f.boolean(c.form, "active")
	isDefault, hasDefault := c.f.boolean(c.form, "is_default")
	var objs []*portalConfig
	for _, pc := range c.st.portalConfigs {
		if (hasActive && pc.Active != active) || (hasDefault && pc.IsDefault != isDefault) {
			continue
		}
		objs = append(objs, pc)
	}
	return list(c, "/v1/billing_portal/configurations", objs, c.st.renderPortalConfig), nil
}

// SaveDashboardPortalSettings creates the default portal configuration of an account in a mode, as saving the
// customer portal settings in the Dashboard does, and returns its ID. It fails when the account has one already.
func (s *Sim) SaveDashboardPortalSettings(account string, live bool) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeFor(sessionKey{account: account, live: live})
	for _, pc := range st.portalConfigs {
		if pc.IsDefault {
			return pc.ID, false
		}
	}
	st.seq++
	now := st.accountNow(s.opts.Now())
	pc := &portalConfig{meta: meta{ID: s.newID("bpc"), Created: now, Seq: st.seq, Metadata: map[string]string{}},
		Active: true, IsDefault: true, Updated: now, InvoiceHistory: true, PaymentMethodUpdate: true,
		CancelMode: "at_period_end", CancelProration: "none", UpdateProration: "none"}
	st.portalConfigs[pc.ID] = pc
	return pc.ID, true
}
