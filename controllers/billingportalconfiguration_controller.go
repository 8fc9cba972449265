package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=billingportalconfigurations,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=billingportalconfigurations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=billingportalconfigurations/finalizers,verbs=update

const (
	kindPortal = "BillingPortalConfiguration"
	resPortal  = "billing_portal_configuration"
	// indexPortalProductRefs and indexPortalPriceRefs index BillingPortalConfigurations by the Products and Prices
	// their subscriptionUpdate names.
	indexPortalProductRefs = "spec.features.subscriptionUpdate.products.productRef.name"
	indexPortalPriceRefs   = "spec.features.subscriptionUpdate.products.prices.priceRef.name"
)

// portalExternal maps a BillingPortalConfiguration to a Stripe customer portal configuration, which Stripe updates
// in place and never deletes.
type portalExternal struct {
	never[*billingv1.BillingPortalConfiguration]
	refs refResolver
}

func (portalExternal) Kind() string { return kindPortal }

// portalKind is the BillingPortalConfiguration's registry entry: it waits for the Products and Prices its
// subscriptionUpdate references, and a Price rolling to a successor re-queues it.
func portalKind() kindEntry {
	k := entry(kindPortal, "billing_portal.configuration", resPortal,
		func() *billingv1.BillingPortalConfiguration { return &billingv1.BillingPortalConfiguration{} },
		func() *billingv1.BillingPortalConfigurationList { return &billingv1.BillingPortalConfigurationList{} },
		func(d loopDeps) External[*billingv1.BillingPortalConfiguration] {
			return portalExternal{refs: refResolver{cache: d.client, live: d.apiReader}}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	k.refs = []reference{
		{kind: kindProduct, index: indexPortalProductRefs, extract: func(o client.Object) []string {
			var names []string
			for _, p := range portalProducts(o.(*billingv1.BillingPortalConfiguration)) {
				if p.ProductRef != nil {
					names = append(names, p.ProductRef.Name)
				}
			}
			return names
		}},
		{kind: kindPrice, index: indexPortalPriceRefs, extract: func(o client.Object) []string {
			var names []string
			for _, p := range portalProducts(o.(*billingv1.BillingPortalConfiguration)) {
				for _, pr := range p.Prices {
					if pr.PriceRef != nil {
						names = append(names, pr.PriceRef.Name)
					}
				}
			}
			return names
		}},
	}
	return k
}

// portalProducts are the products subscriptionUpdate lists.
func portalProducts(obj *billingv1.BillingPortalConfiguration) []billingv1.PortalProduct {
	if su := obj.Spec.Features.SubscriptionUpdate; su != nil {
		return su.Products
	}
	return nil
}

// products resolves subscriptionUpdate's products and prices to Stripe IDs (a referenced Price's current ID, so a
// rolled Price is followed to its successor); msg says what is still missing.
func (e portalExternal) products(ctx context.Context, obj *billingv1.BillingPortalConfiguration) (
	[]billingv1.PortalProductStatus, string, error) {
	var out []billingv1.PortalProductStatus
	for _, p := range portalProducts(obj) {
		ps := billingv1.PortalProductStatus{Product: p.ProductID}
		if p.ProductRef != nil {
			id, msg, err := e.refs.id(ctx, obj.Namespace, p.ProductRef.Name, &billingv1.Product{})
			if err != nil || msg != "" {
				return nil, msg, err
			}
			ps.Product = id
		}
		for _, pr := range p.Prices {
			id := pr.PriceID
			if pr.PriceRef != nil {
				var msg string
				var err error
				if id, msg, err = e.refs.id(ctx, obj.Namespace, pr.PriceRef.Name, &billingv1.Price{}); err != nil ||
					msg != "" {
					return nil, msg, err
				}
			}
			ps.Prices = append(ps.Prices, id)
		}
		out = append(out, ps)
	}
	return out, "", nil
}

func (e portalExternal) Dependencies(ctx context.Context, obj *billingv1.BillingPortalConfiguration) (bool, string,
	error) {
	_, msg, err := e.products(ctx, obj)
	return msg == "", msg, err
}

// Stale: a referenced Product or Price has a new Stripe ID (a Price rolled to a successor), so the products last
// sent to Stripe are not the ones the spec names now.
func (e portalExternal) Stale(ctx context.Context, obj *billingv1.BillingPortalConfiguration) (bool, error) {
	want, msg, err := e.products(ctx, obj)
	if err != nil || msg != "" {
		return false, ignoreMissingRef(err)
	}
	return !slices.EqualFunc(want, obj.Status.Products, func(a, b billingv1.PortalProductStatus) bool {
		return a.Product == b.Product && slices.Equal(a.Prices, b.Prices)
	}), nil
}

func (portalExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.BillingPortalConfiguration) (
	string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// sortedSet renders a set of values for comparison and for status.drift.
func sortedSet[S ~string](l []S) string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, string(v))
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ",")
}

// renderPortalProducts renders products as "prod_a:price_1+price_2,prod_b:price_3" for comparison and drift.
func renderPortalProducts(l []billingv1.PortalProductStatus) string {
	out := make([]string, 0, len(l))
	for _, p := range l {
		out = append(out, p.Product+":"+sortedSet(p.Prices))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// portalFeatures is what Stripe holds of the features, in the spec's terms (a missing feature is disabled).
func portalFeatures(cur *stripego.BillingPortalConfiguration) stripego.BillingPortalConfigurationFeatures {
	f := stripego.BillingPortalConfigurationFeatures{
		CustomerUpdate:      &stripego.BillingPortalConfigurationFeaturesCustomerUpdate{},
		InvoiceHistory:      &stripego.BillingPortalConfigurationFeaturesInvoiceHistory{},
		PaymentMethodUpdate: &stripego.BillingPortalConfigurationFeaturesPaymentMethodUpdate{},
		SubscriptionCancel:  &stripego.BillingPortalConfigurationFeaturesSubscriptionCancel{},
		SubscriptionUpdate:  &stripego.BillingPortalConfigurationFeaturesSubscriptionUpdate{},
	}
	if cur == nil || cur.Features == nil {
		return f
	}
	have := cur.Features
	if have.CustomerUpdate != nil {
		f.CustomerUpdate = have.CustomerUpdate
	}
	if have.InvoiceHistory != nil {
		f.InvoiceHistory = have.InvoiceHistory
	}
	if have.PaymentMethodUpdate != nil {
		f.PaymentMethodUpdate = have.PaymentMethodUpdate
	}
	if have.SubscriptionCancel != nil {
		f.SubscriptionCancel = have.SubscriptionCancel
	}
	if have.SubscriptionUpdate != nil {
		f.SubscriptionUpdate = have.SubscriptionUpdate
	}
	return f
}

// portalParams renders what differs from cur (everything when cur is nil, a create), feature by feature: a feature
// that differs is sent whole. products are subscriptionUpdate's products resolved to Stripe IDs.
func portalParams(spec *billingv1.BillingPortalConfigurationSpec, products []billingv1.PortalProductStatus,
	stamp map[string]string, cur *stripego.BillingPortalConfiguration) (*stripego.BillingPortalConfigurationParams,
	map[string]string) {
	p := &stripego.BillingPortalConfigurationParams{}
	changed := map[string]string{}
	creating := cur == nil
	have := stripego.BillingPortalConfiguration{Active: true,
		BusinessProfile: &stripego.BillingPortalConfigurationBusinessProfile{}}
	if cur != nil {
		have = *cur
		if have.BusinessProfile == nil {
			have.BusinessProfile = &stripego.BillingPortalConfigurationBusinessProfile{}
		}
	}
	bp := billingv1.PortalBusinessProfile{}
	if spec.BusinessProfile != nil {
		bp = *spec.BusinessProfile
	}
	p.BusinessProfile = &stripego.BillingPortalConfigurationBusinessProfileParams{}
	sendBP := creating // Stripe requires business_profile on create
	str := func(name, want, got string, set func(*string)) {
		if want != got {
			set(stripego.String(want))
			changed[name] = got + "->" + want
		} else if creating && want != "" {
			set(stripego.String(want))
		}
	}
	str("business_profile.headline", bp.Headline, have.BusinessProfile.Headline,
		func(v *string) { p.BusinessProfile.Headline, sendBP = v, true })
	str("business_profile.privacy_policy_url", bp.PrivacyPolicyURL, have.BusinessProfile.PrivacyPolicyURL,
		func(v *string) { p.BusinessProfile.PrivacyPolicyURL, sendBP = v, true })
	str("business_profile.terms_of_service_url", bp.TermsOfServiceURL, have.BusinessProfile.TermsOfServiceURL,
		func(v *string) { p.BusinessProfile.TermsOfServiceURL, sendBP = v, true })
	if creating && p.BusinessProfile.Headline == nil {
		p.BusinessProfile.Headline = stripego.String("") // an empty business_profile hash would not be sent
	}
	if !sendBP {
		p.BusinessProfile = nil
	}
	str("default_return_url", spec.DefaultReturnURL, have.DefaultReturnURL,
		func(v *string) { p.DefaultReturnURL = v })
	if active := spec.Active == nil || *spec.Active; active != have.Active {
		p.Active = stripego.Bool(active)
		changed["active"] = strconv.FormatBool(have.Active) + "->" + strconv.FormatBool(active)
	}
	if creating {
		p.Active = nil // a new configuration is active; deactivating it is an update
	}
	p.Features = portalFeatureParams(&spec.Features, products, portalFeatures(cur), creating, changed, p.AddExtra)
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, creating, changed)
	return p, changed
}

// featureOff is how a disabled feature renders for comparison; an enabled one renders as "true;field=value;...",
// since its fields count only while it is enabled.
const featureOff = "false"

// featureDiff compares features and records what differs in changed; when creating, every feature is sent.
type featureDiff struct {
	creating bool
	changed  map[string]string
	// extra sends a raw form parameter (an empty list, which stripe-go would not send).
	extra func(key, value string)
}

// send reports whether the feature name must be sent: it differs, or the configuration is being created.
func (d featureDiff) send(name, want, got string) bool {
	if want != got {
		d.changed[name] = got + "->" + want
		return true
	}
	return d.creating
}

// portalFeatureParams renders the features that differ from have (all of them when creating).
func portalFeatureParams(spec *billingv1.PortalFeatures, products []billingv1.PortalProductStatus,
	have stripego.BillingPortalConfigurationFeatures, creating bool, changed map[string]string,
	extra func(key, value string)) *stripego.BillingPortalConfigurationFeaturesParams {
	d := featureDiff{creating: creating, changed: changed, extra: extra}
	fp := &stripego.BillingPortalConfigurationFeaturesParams{}
	toggle := func(t *billingv1.PortalFeatureToggle) bool { return t != nil && t.Enabled }
	if on := toggle(spec.InvoiceHistory); d.send("features.invoice_history", strconv.FormatBool(on),
		strconv.FormatBool(have.InvoiceHistory.Enabled)) {
		fp.InvoiceHistory = &stripego.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripego.Bool(on)}
	}
	if on := toggle(spec.PaymentMethodUpdate); d.send("features.payment_method_update", strconv.FormatBool(on),
		strconv.FormatBool(have.PaymentMethodUpdate.Enabled)) {
		fp.PaymentMethodUpdate = &stripego.BillingPortalConfigurationFeaturesPaymentMethodUpdateParams{
			Enabled: stripego.Bool(on)}
	}
	fp.CustomerUpdate = d.customerUpdate(spec.CustomerUpdate, have.CustomerUpdate)
	fp.SubscriptionCancel = d.subscriptionCancel(spec.SubscriptionCancel, have.SubscriptionCancel)
	fp.SubscriptionUpdate = d.subscriptionUpdate(spec.SubscriptionUpdate, products, have.SubscriptionUpdate)
	return fp
}

func (d featureDiff) customerUpdate(cu *billingv1.PortalCustomerUpdate,
	have *stripego.BillingPortalConfigurationFeaturesCustomerUpdate,
) *stripego.BillingPortalConfigurationFeaturesCustomerUpdateParams {
	on := cu != nil && cu.Enabled
	want, got := featureOff, featureOff
	if on {
		want = "true;allowed_updates=" + sortedSet(cu.AllowedUpdates)
	}
	if have.Enabled {
		got = "true;allowed_updates=" + sortedSet(have.AllowedUpdates)
	}
	if !d.send("features.customer_update", want, got) {
		return nil
	}
	p := &stripego.BillingPortalConfigurationFeaturesCustomerUpdateParams{Enabled: stripego.Bool(on)}
	if on {
		if len(cu.AllowedUpdates) == 0 {
			d.extra("features[customer_update][allowed_updates]", "")
		}
		p.AllowedUpdates = stripego.StringSlice(cu.AllowedUpdates)
	}
	return p
}

func (d featureDiff) subscriptionCancel(sc *billingv1.PortalSubscriptionCancel,
	have *stripego.BillingPortalConfigurationFeaturesSubscriptionCancel,
) *stripego.BillingPortalConfigurationFeaturesSubscriptionCancelParams {
	on := sc != nil && sc.Enabled
	want, got := featureOff, featureOff
	if on {
		want = "true;mode=" + cancelMode(sc) + ";proration_behavior=" + proration(sc.ProrationBehavior)
	}
	if have.Enabled {
		got = "true;mode=" + string(have.Mode) + ";proration_behavior=" + string(have.ProrationBehavior)
	}
	if !d.send("features.subscription_cancel", want, got) {
		return nil
	}
	p := &stripego.BillingPortalConfigurationFeaturesSubscriptionCancelParams{Enabled: stripego.Bool(on)}
	if on {
		p.Mode = stripego.String(cancelMode(sc))
		p.ProrationBehavior = stripego.String(proration(sc.ProrationBehavior))
	}
	return p
}

func (d featureDiff) subscriptionUpdate(su *billingv1.PortalSubscriptionUpdate,
	products []billingv1.PortalProductStatus, have *stripego.BillingPortalConfigurationFeaturesSubscriptionUpdate,
) *stripego.BillingPortalConfigurationFeaturesSubscriptionUpdateParams {
	on := su != nil && su.Enabled
	want, got := featureOff, featureOff
	if on {
		want = "true;default_allowed_updates=" + sortedSet(su.DefaultAllowedUpdates) + ";proration_behavior=" +
			proration(su.ProrationBehavior) + ";products=" + renderPortalProducts(products)
	}
	if have.Enabled {
		hp := make([]billingv1.PortalProductStatus, 0, len(have.Products))
		for _, p := range have.Products {
			hp = append(hp, billingv1.PortalProductStatus{Product: p.Product, Prices: p.Prices})
		}
		got = "true;default_allowed_updates=" + sortedSet(have.DefaultAllowedUpdates) + ";proration_behavior=" +
			string(have.ProrationBehavior) + ";products=" + renderPortalProducts(hp)
	}
	// A create leaves subscription updates disabled unless the spec enables them (Stripe's default).
	if !d.send("features.subscription_update", want, got) || (d.creating && !on) {
		return nil
	}
	p := &stripego.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{Enabled: stripego.Bool(on)}
	if !on {
		return p
	}
	if len(su.DefaultAllowedUpdates) == 0 {
		d.extra("features[subscription_update][default_allowed_updates]", "")
	}
	p.DefaultAllowedUpdates = stripego.StringSlice(su.DefaultAllowedUpdates)
	p.ProrationBehavior = stripego.String(proration(su.ProrationBehavior))
	for _, pr := range products {
		p.Products = append(p.Products, &stripego.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
			Product: stripego.String(pr.Product), Prices: stripego.StringSlice(pr.Prices)})
	}
	return p
}

// cancelMode is subscriptionCancel's mode, at_period_end unless set.
func cancelMode(sc *billingv1.PortalSubscriptionCancel) string {
	if sc.Mode == "" {
		return "at_period_end"
	}
	return sc.Mode
}

// proration is a proration behaviour, none unless set.
func proration(p billingv1.PortalProrationBehavior) string {
	if p == "" {
		return "none"
	}
	return string(p)
}

func getPortal(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (
	*stripego.BillingPortalConfiguration, error) {
	p := &stripego.BillingPortalConfigurationParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resPortal, Operation: stripe.OpRetrieve, Priority: prio},
		&p.Params, func() (*stripego.BillingPortalConfiguration, error) {
			return c.API.BillingPortalConfigurations.Get(id, p)
		})
}

func updatePortal(ctx context.Context, c *stripe.Client, id, key string,
	p *stripego.BillingPortalConfigurationParams) (*stripego.BillingPortalConfiguration, error) {
	return stripe.Call(ctx, c, stripe.Op{Resource: resPortal, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.BillingPortalConfiguration, error) {
			return c.API.BillingPortalConfigurations.Update(id, p)
		})
}

func (e portalExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.BillingPortalConfiguration,
	id string, prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getPortal(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	products, msg, err := e.products(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	if msg != "" {
		return Observation{}, fmt.Errorf("%s", msg)
	}
	obj.Status.IsDefault = cur.IsDefault
	_, changed := portalParams(&obj.Spec, products, stamp, cur)
	if len(changed) == 0 {
		obj.Status.Products = products
	}
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

func (e portalExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.BillingPortalConfiguration,
	key string, stamp map[string]string) (string, error) {
	products, msg, err := e.products(ctx, obj)
	if err != nil {
		return "", err
	}
	if msg != "" {
		return "", fmt.Errorf("%s", msg)
	}
	p, _ := portalParams(&obj.Spec, products, stamp, nil)
	pc, err := stripe.Call(ctx, c, stripe.Op{Resource: resPortal, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.BillingPortalConfiguration, error) {
			return c.API.BillingPortalConfigurations.New(p)
		})
	if err != nil {
		return "", err
	}
	obj.Status.Products, obj.Status.IsDefault = products, pc.IsDefault
	// A configuration is created active; an inactive spec is applied by the update that follows.
	return pc.ID, nil
}

func (e portalExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.BillingPortalConfiguration,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getPortal)
	if err != nil {
		return err
	}
	products, msg, err := e.products(ctx, obj)
	if err != nil {
		return err
	}
	if msg != "" {
		return fmt.Errorf("%s", msg)
	}
	p, changed := portalParams(&obj.Spec, products, stamp, cur)
	if len(changed) == 0 {
		obj.Status.Products = products
		return nil
	}
	if _, err := updatePortal(ctx, c, obj.Status.ID, updateKey(obj, changed), p); err != nil {
		return err
	}
	obj.Status.Products = products
	return nil
}

func (portalExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.BillingPortalConfiguration,
	_ time.Time) (string, error) {
	// Stripe lists portal configurations without a created filter: the stamp alone finds the object.
	p := &stripego.BillingPortalConfigurationListParams{}
	return findByUID(ctx, c, resPortal, &p.ListParams, string(obj.UID), []string{obj.Status.ID},
		func() ([]stripeObject, bool, error) {
			it := c.API.BillingPortalConfigurations.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.BillingPortalConfigurationList()
			return toStripeObjects(l.Data, func(o *stripego.BillingPortalConfiguration) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete deactivates the configuration (Deactivate; Stripe cannot delete one) or leaves it (Orphan). The account's
// default configuration cannot be deactivated (Stripe refuses): it is left active.
func (portalExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.BillingPortalConfiguration) error {
	if obj.Spec.DeletionPolicy == billingv1.PortalOrphan || obj.Status.IsDefault {
		return nil
	}
	key := stripe.IdempotencyKey(string(obj.UID), "deactivate", obj.Generation)
	_, err := updatePortal(ctx, c, obj.Status.ID, key,
		&stripego.BillingPortalConfigurationParams{Active: stripego.Bool(false)})
	return err
}
