package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=subscriptions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=subscriptions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=subscriptions/finalizers,verbs=update

const resSubscription = "subscription"

// subscriptionExternal maps a Subscription to a Stripe subscription.
type subscriptionExternal struct {
	never[*billingv1.Subscription]
	client   client.Client
	refs     refResolver
	recorder events.EventRecorder
	opts     Options
}

func (subscriptionExternal) Kind() string { return kindSubscription }

// Indexes of Subscriptions by the objects they reference.
const (
	indexCustomerRef = "spec.customerRef.name"
	indexPriceRefs   = "spec.items.priceRef.name"
	indexTaxRateRefs = "spec.taxRateRefs.name"
)

// subscriptionKind is the Subscription's registry entry: it waits for its Customer and Prices, and Stripe moves its
// state and invoices on its own, which events report.
func subscriptionKind() kindEntry {
	k := entry(kindSubscription, "subscription", resSubscription,
		func() *billingv1.Subscription { return &billingv1.Subscription{} },
		func() *billingv1.SubscriptionList { return &billingv1.SubscriptionList{} },
		func(d loopDeps) External[*billingv1.Subscription] {
			return subscriptionExternal{client: d.client, refs: refResolver{cache: d.client, live: d.apiReader},
				recorder: d.recorder, opts: d.opts}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpCancel, stripe.OpList, opDeleteDiscount)
	k.refs = []reference{
		{kind: kindCustomer, index: indexCustomerRef, extract: func(o client.Object) []string {
			if ref := o.(*billingv1.Subscription).Spec.CustomerRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
		{kind: kindPrice, index: indexPriceRefs, extract: func(o client.Object) []string {
			var names []string
			for _, it := range o.(*billingv1.Subscription).Spec.Items {
				if it.PriceRef != nil {
					names = append(names, it.PriceRef.Name)
				}
			}
			return names
		}},
		{kind: kindTaxRate, index: indexTaxRateRefs, extract: func(o client.Object) []string {
			return taxRateRefNames(&o.(*billingv1.Subscription).Spec)
		}},
	}
	k.refs = append(k.refs, discountRefs()...)
	k.lifecycleFields = []string{"stripeStatus", "currentPeriodStart", "currentPeriodEnd", "cancelAtPeriodEnd",
		"latestInvoice"}
	return k
}

// wantItem is a spec item resolved to Stripe IDs: the price to use, and the earlier prices of the same Price
// object that an existing item may still bill on.
type wantItem struct {
	price    string
	previous []string
	quantity *int64
	// taxRates are the item's own tax rates (the spec's taxRates resolved).
	taxRates []string
}

// wantSubscription is the spec resolved to Stripe IDs.
type wantSubscription struct {
	customer        string
	items           []wantItem
	defaultTaxRates []string
}

// resolveAll finds the Stripe IDs the spec references, tax rates included; msg says what is still missing.
func (e subscriptionExternal) resolveAll(ctx context.Context, obj *billingv1.Subscription) (wantSubscription,
	string, error) {
	var w wantSubscription
	var msg string
	var err error
	if w.customer, w.items, msg, err = e.resolveItems(ctx, obj); err != nil || msg != "" {
		return w, msg, err
	}
	if w.defaultTaxRates, msg, err = e.taxRates(ctx, obj.Namespace, obj.Spec.DefaultTaxRates); err != nil ||
		msg != "" {
		return w, msg, err
	}
	for i, it := range obj.Spec.Items {
		if w.items[i].taxRates, msg, err = e.taxRates(ctx, obj.Namespace, it.TaxRates); err != nil || msg != "" {
			return w, msg, err
		}
	}
	return w, "", nil
}

// taxRates resolves tax rate references to Stripe IDs, in the spec's order.
func (e subscriptionExternal) taxRates(ctx context.Context, namespace string,
	refs []billingv1.TaxRateReference) ([]string, string, error) {
	ids := make([]string, 0, len(refs))
	for _, r := range refs {
		id := r.TaxRateID
		if r.TaxRateRef != nil {
			var msg string
			var err error
			if id, msg, err = e.refs.id(ctx, namespace, r.TaxRateRef.Name, &billingv1.TaxRate{}); err != nil ||
				msg != "" {
				return nil, msg, err
			}
		}
		ids = append(ids, id)
	}
	return ids, "", nil
}

// taxRateRefNames are the TaxRates a subscription references by name, by default or on an item.
func taxRateRefNames(spec *billingv1.SubscriptionSpec) []string {
	var names []string
	add := func(refs []billingv1.TaxRateReference) {
		for _, r := range refs {
			if r.TaxRateRef != nil && !slices.Contains(names, r.TaxRateRef.Name) {
				names = append(names, r.TaxRateRef.Name)
			}
		}
	}
	add(spec.DefaultTaxRates)
	for _, it := range spec.Items {
		add(it.TaxRates)
	}
	return names
}

// resolveItems finds the Stripe IDs of the customer and the items' prices; msg says what is still missing.
func (e subscriptionExternal) resolveItems(ctx context.Context, obj *billingv1.Subscription) (string, []wantItem,
	string, error) {
	customerID := obj.Spec.CustomerID
	if ref := obj.Spec.CustomerRef; ref != nil {
		id, msg, err := e.refs.id(ctx, obj.Namespace, ref.Name, &billingv1.Customer{})
		if err != nil || msg != "" {
			return "", nil, msg, err
		}
		customerID = id
	}
	items := make([]wantItem, 0, len(obj.Spec.Items))
	for _, it := range obj.Spec.Items {
		w := wantItem{price: it.PriceID, quantity: it.Quantity}
		if ref := it.PriceRef; ref != nil {
			pr := &billingv1.Price{}
			id, msg, err := e.refs.id(ctx, obj.Namespace, ref.Name, pr)
			if err != nil || msg != "" {
				return "", nil, msg, err
			}
			w.price, w.previous = id, pr.Status.PreviousIDs
		}
		items = append(items, w)
	}
	return customerID, items, "", nil
}

func (e subscriptionExternal) Dependencies(ctx context.Context, obj *billingv1.Subscription) (bool, string, error) {
	_, msg, err := e.resolveAll(ctx, obj)
	if msg == "" && err == nil {
		_, msg, err = e.wantDiscount(ctx, obj)
	}
	return msg == "", msg, err
}

// Stale: a referenced Price has rolled, so an item is on a price that is neither current nor (under Keep) one of
// its earlier ones, or an item is missing.
func (e subscriptionExternal) Stale(ctx context.Context, obj *billingv1.Subscription) (bool, error) {
	all, msg, err := e.resolveAll(ctx, obj)
	if err != nil || msg != "" {
		return false, ignoreMissingRef(err)
	}
	customerID, want := all.customer, all.items
	if customerID != obj.Status.CustomerID || !slices.Equal(all.defaultTaxRates, obj.Status.DefaultTaxRateIDs) {
		return true, nil // a referenced TaxRate rolled: the subscription moves to its successor
	}
	if meta.IsStatusConditionTrue(obj.Status.Conditions, billingv1.ConditionSpecDiverged) {
		// The items may be Stripe's own (changesInStripe Follow): a rolled Price is migrated at the next read.
		return false, nil
	}
	if len(want) != len(obj.Status.Items) {
		return true, nil
	}
	for _, w := range want {
		found := false
		for _, have := range obj.Status.Items {
			if (have.PriceID == w.price ||
				obj.Spec.PriceChangePolicy != billingv1.PriceChangeMigrate && slices.Contains(w.previous, have.PriceID)) &&
				slices.Equal(have.TaxRateIDs, w.taxRates) {
				found = true
			}
		}
		if !found {
			return true, nil
		}
	}
	return false, nil
}

func (subscriptionExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.Subscription) (string,
	error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

func getSubscription(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (
	*stripego.Subscription, error) {
	p := &stripego.SubscriptionParams{}
	// The payment intent of the latest invoice says why a payment failed, without a read of its own.
	p.AddExpand("latest_invoice")
	p.AddExpand("latest_invoice.payment_intent")
	return stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: stripe.OpRetrieve, Priority: prio},
		&p.Params, func() (*stripego.Subscription, error) { return c.API.Subscriptions.Get(id, p) })
}

// itemChanges diffs the items by subscription-item ID. An existing item on a Price's earlier price matches that
// Price: with priceChangePolicy Keep it stays on the old price, with Migrate it moves to the current one.
// With keepStripe (the items changed in Stripe are followed), only those migrations are rendered.
func itemChanges(spec *billingv1.SubscriptionSpec, want []wantItem, have []*stripego.SubscriptionItem,
	keepStripe bool) ([]*stripego.SubscriptionItemsParams, map[string]string) {
	var params []*stripego.SubscriptionItemsParams
	changed := map[string]string{}
	matched := map[string]bool{}
	for _, w := range want {
		var hit *stripego.SubscriptionItem
		for _, h := range have {
			if !matched[h.ID] && h.Price != nil && (h.Price.ID == w.price || slices.Contains(w.previous, h.Price.ID)) {
				hit = h
				break
			}
		}
		if hit == nil {
			if keepStripe {
				continue
			}
			item := &stripego.SubscriptionItemsParams{Price: stripego.String(w.price)}
			if w.quantity != nil {
				item.Quantity = stripego.Int64(*w.quantity)
			}
			if len(w.taxRates) > 0 {
				item.TaxRates = stripego.StringSlice(w.taxRates)
			}
			params = append(params, item)
			changed["add."+w.price] = "1"
			continue
		}
		matched[hit.ID] = true
		item := &stripego.SubscriptionItemsParams{ID: stripego.String(hit.ID)}
		dirty := false
		if hit.Price.ID != w.price && spec.PriceChangePolicy == billingv1.PriceChangeMigrate {
			item.Price = stripego.String(w.price)
			changed["price."+hit.ID] = hit.Price.ID + "->" + w.price
			dirty = true
		}
		if w.quantity != nil && *w.quantity != hit.Quantity && !keepStripe {
			item.Quantity = stripego.Int64(*w.quantity)
			changed["quantity."+hit.ID] = strconv.FormatInt(*w.quantity, 10)
			dirty = true
		}
		if have := taxRateIDs(hit.TaxRates); !slices.Equal(have, w.taxRates) {
			// A non-nil empty list clears the item's tax rates.
			item.TaxRates = append(make([]*string, 0, len(w.taxRates)), stripego.StringSlice(w.taxRates)...)
			changed["tax_rates."+hit.ID] = strings.Join(have, ",") + "->" + strings.Join(w.taxRates, ",")
			dirty = true
		}
		if dirty {
			params = append(params, item)
		}
	}
	for _, h := range have {
		if !matched[h.ID] && !keepStripe {
			params = append(params, &stripego.SubscriptionItemsParams{ID: stripego.String(h.ID),
				Deleted: stripego.Bool(true)})
			changed["delete."+h.ID] = "1"
		}
	}
	return params, changed
}

// taxRateIDs are the IDs of tax rates as Stripe renders them.
func taxRateIDs(rates []*stripego.TaxRate) []string {
	ids := make([]string, 0, len(rates))
	for _, r := range rates {
		ids = append(ids, r.ID)
	}
	return ids
}

// subscriptionTaxParams sets default_tax_rates when they differ from cur's (nil: a create).
func subscriptionTaxParams(p *stripego.SubscriptionParams, want []string, cur *stripego.Subscription,
	changed map[string]string) {
	var have []string
	if cur != nil {
		have = taxRateIDs(cur.DefaultTaxRates)
	}
	if slices.Equal(have, want) || cur == nil && len(want) == 0 {
		return
	}
	// A non-nil empty list clears them.
	p.DefaultTaxRates = append(make([]*string, 0, len(want)), stripego.StringSlice(want)...)
	changed["default_tax_rates"] = strings.Join(have, ",") + "->" + strings.Join(want, ",")
}

// subscriptionParams renders what differs between the spec and cur (nil: a create). pm is the payment method ID
// that should be the default (see defaultPaymentMethod), attached to the customer before. The groups of spec fields
// plan skips are left as Stripe has them (see subscription_drift.go).
func subscriptionParams(spec *billingv1.SubscriptionSpec, w wantSubscription, stamp map[string]string,
	cur *stripego.Subscription, pm string, plan driftPlan) (*stripego.SubscriptionParams, map[string]string) {
	customerID, want := w.customer, w.items
	p := &stripego.SubscriptionParams{}
	have := stripego.Subscription{CollectionMethod: stripego.SubscriptionCollectionMethodChargeAutomatically}
	var haveItems []*stripego.SubscriptionItem
	if cur != nil {
		have = *cur
		if cur.Items != nil {
			haveItems = cur.Items.Data
		}
	}
	items, changed := itemChanges(spec, want, haveItems, plan.skip(groupItems))
	p.Items = items
	if cm := string(spec.CollectionMethod); cm != "" && cm != string(have.CollectionMethod) &&
		!plan.skip(groupCollectionMethod) {
		p.CollectionMethod = stripego.String(cm)
		changed["collection_method"] = cm
	}
	if d := spec.DaysUntilDue; d != nil && *d != have.DaysUntilDue && !plan.skip(groupDaysUntilDue) {
		p.DaysUntilDue = stripego.Int64(*d)
		changed["days_until_due"] = strconv.FormatInt(*d, 10)
	}
	if havePM := subscriptionDefaultPM(&have); pm != havePM && !plan.skip(groupDefaultPaymentMethod) {
		p.DefaultPaymentMethod = stripego.String(pm)
		changed["default_payment_method"] = pm
	}
	if spec.CancelAtPeriodEnd != have.CancelAtPeriodEnd && !plan.skip(groupCancelAtPeriodEnd) {
		p.CancelAtPeriodEnd = stripego.Bool(spec.CancelAtPeriodEnd)
		changed["cancel_at_period_end"] = strconv.FormatBool(spec.CancelAtPeriodEnd)
	}
	if !plan.skip(groupMetadata) {
		metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	}
	subscriptionTaxParams(p, w.defaultTaxRates, cur, changed)
	if cur == nil {
		p.Customer = stripego.String(customerID)
		if spec.TrialPeriodDays != nil {
			p.TrialPeriodDays = stripego.Int64(*spec.TrialPeriodDays)
		}
		if spec.PaymentBehavior != "" {
			p.PaymentBehavior = stripego.String(string(spec.PaymentBehavior))
		}
	}
	if spec.ProrationBehavior != "" && len(p.Items) > 0 {
		p.ProrationBehavior = stripego.String(string(spec.ProrationBehavior))
	}
	return p, changed
}

// subscriptionDefaultPM is the subscription's default payment method in Stripe, or "".
func subscriptionDefaultPM(s *stripego.Subscription) string {
	if s == nil || s.DefaultPaymentMethod == nil {
		return ""
	}
	return s.DefaultPaymentMethod.ID
}

// ended reports a subscription Stripe will not change any more.
func ended(s *stripego.Subscription) bool {
	return s.Status == stripego.SubscriptionStatusCanceled || s.Status == stripego.SubscriptionStatusIncompleteExpired
}

func (e subscriptionExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getSubscription(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	setSubscriptionStatus(obj, cur)
	if ended(cur) {
		return Observation{Exists: true, UpToDate: true, Current: cur}, nil // Stripe refuses changes; status tells the truth
	}
	all, _, err := e.resolveAll(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	pm, attached := defaultPaymentMethod(obj.Spec.DefaultPaymentMethod, &obj.Status.DefaultPaymentMethod,
		subscriptionDefaultPM(cur))
	discount, _, err := e.wantDiscount(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	plan, changed := e.plan(obj, all, discount, stamp, cur, pm)
	if len(plan.loop) > 0 {
		recordApplied(obj, plan, e.opts.now(), e.opts.driftLoopWindow())
		return Observation{}, driftLoopError(obj, plan.loop, e.opts.driftLoopWindow())
	}
	upToDate := attached && len(changed) == 0
	if upToDate {
		recordApplied(obj, plan, e.opts.now(), e.opts.driftLoopWindow())
	}
	return Observation{Exists: true, UpToDate: upToDate, Current: cur,
		Drift: subscriptionDrift(changed, cur, obj.Spec.DefaultPaymentMethod, attached)}, nil
}

// plan compares the spec with the Stripe subscription cur and sorts what differs (see subscription_drift.go):
// changed is what the update would send, without the groups the plan leaves as Stripe has them.
// discount is the spec's discount (wantDiscount).
func (e subscriptionExternal) plan(obj *billingv1.Subscription, w wantSubscription, discount string,
	stamp map[string]string, cur *stripego.Subscription, pm string) (driftPlan, map[string]string) {
	_, all := subscriptionParams(&obj.Spec, w, stamp, cur, pm, driftPlan{})
	if have := haveDiscount(cur.Discount); decideDiscount(discount, have, obj.Status.Discount) != discountKeep {
		all[groupDiscount] = have + "->" + discount
	}
	plan := planDrift(obj, all, e.opts.now(), e.opts.driftLoopWindow())
	return plan, withoutSkipped(all, plan)
}

// subscriptionDrift is status.drift for the changes subscriptionParams found, with Stripe's values from cur.
// The spec's payment method is listed when it is not attached yet (Update attaches it first).
func subscriptionDrift(changed map[string]string, cur *stripego.Subscription, pm string,
	attached bool) []billingv1.FieldDrift {
	items := map[string]*stripego.SubscriptionItem{}
	if cur.Items != nil {
		for _, it := range cur.Items.Data {
			items[it.ID] = it
		}
	}
	priceOf := func(si string) string {
		if it := items[si]; it != nil && it.Price != nil {
			return it.Price.ID
		}
		return si
	}
	out := map[string]string{}
	for k, v := range changed {
		op, arg, _ := strings.Cut(k, ".")
		switch g := changeGroup(k); {
		case op == "add":
			out["items."+arg] = "->" + arg
		case op == "delete":
			out["items."+priceOf(arg)] = priceOf(arg) + "->"
		case op == "quantity":
			out["items."+priceOf(arg)+".quantity"] = strconv.FormatInt(items[arg].Quantity, 10) + "->" + v
		case op == "price":
			out["items."+arg+".price"] = v
		case g == groupCollectionMethod:
			out[k] = string(cur.CollectionMethod) + "->" + v
		case g == groupDaysUntilDue:
			out[k] = strconv.FormatInt(cur.DaysUntilDue, 10) + "->" + v
		case g == groupDefaultPaymentMethod:
			out[k] = subscriptionDefaultPM(cur) + "->" + v
		case g == groupCancelAtPeriodEnd:
			out[k] = strconv.FormatBool(cur.CancelAtPeriodEnd) + "->" + v
		default: // metadata, already "<Stripe's>-><the spec's>"
			out[k] = v
		}
	}
	if !attached {
		out["default_payment_method"] = subscriptionDefaultPM(cur) + "->" + pm
	}
	return driftOf(out)
}

// setSubscriptionStatus copies Stripe's view into status.
func setSubscriptionStatus(obj *billingv1.Subscription, s *stripego.Subscription) {
	st := &obj.Status
	if s.Customer != nil {
		st.CustomerID = s.Customer.ID
	}
	st.StripeState = string(s.Status)
	st.CancelAtPeriodEnd = s.CancelAtPeriodEnd
	st.CurrentPeriodStart, st.CurrentPeriodEnd = unixTime(s.CurrentPeriodStart), unixTime(s.CurrentPeriodEnd)
	st.DefaultTaxRateIDs = nilIfNone(taxRateIDs(s.DefaultTaxRates))
	st.Items = nil
	if s.Items != nil {
		for _, it := range s.Items.Data {
			item := billingv1.SubscriptionItemStatus{ID: it.ID, Quantity: it.Quantity,
				TaxRateIDs: nilIfNone(taxRateIDs(it.TaxRates))}
			if it.Price != nil {
				item.PriceID = it.Price.ID
			}
			st.Items = append(st.Items, item)
		}
	}
	prev := st.LatestInvoice
	st.LatestInvoice = nil
	switch in := s.LatestInvoice; {
	case in == nil || in.ID == "":
	case in.Object == "" && prev != nil && prev.ID == in.ID:
		// Not expanded (an event payload names only the ID): what status knows of the same invoice stays.
		st.LatestInvoice = prev
	default:
		st.LatestInvoice = invoiceSummary(in)
		foldInvoicePayment(obj, in)
	}
	// A repeating discount ends with the period Stripe invoices at its end: the subscription's own clock.
	setDiscountStatus(obj, s.Discount, time.Unix(s.CurrentPeriodStart, 0))
}

// foldInvoicePayment sets PaymentFailed from an expanded latest invoice read from Stripe, as its events would: paid,
// or failed with its payment intent's last error (expanded, so no read of its own). Other states leave it.
func foldInvoicePayment(sub *billingv1.Subscription, in *stripego.Invoice) {
	switch {
	case in.Status == stripego.InvoiceStatusPaid:
		foldInvoice(sub, in, "invoice.paid", "", "")
	case in.Status == stripego.InvoiceStatusOpen && in.Attempted && in.PaymentIntent != nil &&
		in.PaymentIntent.LastPaymentError != nil:
		foldInvoice(sub, in, "invoice.payment_failed", "", paymentErrorMessage(in.PaymentIntent.LastPaymentError))
	}
}

// nilIfNone keeps an empty list out of status (it is omitted there).
func nilIfNone(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func unixTime(sec int64) *metav1.Time {
	if sec == 0 {
		return nil
	}
	t := metav1.NewTime(time.Unix(sec, 0).UTC())
	return &t
}

func (e subscriptionExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription, key string,
	stamp map[string]string) (string, error) {
	all, msg, err := e.resolveAll(ctx, obj)
	if err != nil {
		return "", err
	}
	if msg != "" {
		return "", fmt.Errorf("%s", msg)
	}
	pm, err := e.attachDefault(ctx, c, obj, all.customer, "")
	if err != nil {
		return "", err
	}
	p, _ := subscriptionParams(&obj.Spec, all, stamp, nil, pm, driftPlan{})
	discount, _, err := e.wantDiscount(ctx, obj)
	if err != nil {
		return "", err
	}
	setDiscountParams(p, discount)
	// The payment intent of the latest invoice says why a payment failed, without a read of its own.
	p.AddExpand("latest_invoice")
	p.AddExpand("latest_invoice.payment_intent")
	sub, err := stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Subscription, error) { return c.API.Subscriptions.New(p) })
	if err != nil {
		return "", err
	}
	setSubscriptionStatus(obj, sub)
	recordApplied(obj, driftPlan{}, e.opts.now(), e.opts.driftLoopWindow())
	recordDiscountApplied(obj, discount)
	return sub.ID, nil
}

func (e subscriptionExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getSubscription)
	if err != nil {
		return err
	}
	if ended(cur) {
		setSubscriptionStatus(obj, cur)
		return nil
	}
	all, _, err := e.resolveAll(ctx, obj)
	if err != nil {
		return err
	}
	pm, err := e.attachDefault(ctx, c, obj, all.customer, subscriptionDefaultPM(cur))
	if err != nil {
		return err
	}
	discount, _, err := e.wantDiscount(ctx, obj)
	if err != nil {
		return err
	}
	plan, _ := e.plan(obj, all, discount, stamp, cur, pm)
	if len(plan.loop) > 0 {
		recordApplied(obj, plan, e.opts.now(), e.opts.driftLoopWindow())
		return driftLoopError(obj, plan.loop, e.opts.driftLoopWindow())
	}
	p, changed := subscriptionParams(&obj.Spec, all, stamp, cur, pm, plan)
	action := decideDiscount(discount, haveDiscount(cur.Discount), obj.Status.Discount)
	if plan.skip(groupDiscount) {
		action = discountKeep // changed in Stripe and followed, or looping
	}
	switch have := haveDiscount(cur.Discount); action {
	case discountApply:
		setDiscountParams(p, discount)
		changed[groupDiscount] = discount
	case discountRemove:
		if err := removeDiscount(ctx, c, obj, have); err != nil {
			return err
		}
	}
	if len(changed) == 0 {
		recordApplied(obj, plan, e.opts.now(), e.opts.driftLoopWindow())
		return nil
	}
	// The payment intent of the latest invoice says why a payment failed, without a read of its own.
	p.AddExpand("latest_invoice")
	p.AddExpand("latest_invoice.payment_intent")
	key := updateKey(obj, changed)
	sub, err := stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Subscription, error) { return c.API.Subscriptions.Update(obj.Status.ID, p) })
	if err != nil {
		return err
	}
	setSubscriptionStatus(obj, sub)
	if len(plan.restore) > 0 && obj.Status.SyncRequest == obj.Status.LastHandledSyncRequest && e.recorder != nil {
		// Found at a resync, not through an event (whose fold said so already).
		e.recorder.Eventf(obj, nil, corev1.EventTypeWarning, reasonDriftDetected, "Reconcile",
			"%s changed in Stripe outside the operator (found at a resync): %s; restored the spec", obj.Status.ID,
			strings.Join(plan.restore, ", "))
	}
	recordApplied(obj, plan, e.opts.now(), e.opts.driftLoopWindow())
	recordDiscountApplied(obj, discount)
	return nil
}

// attachDefault resolves spec.defaultPaymentMethod to the ID that should be the subscription's default (have is the
// one Stripe holds), attaching it to the subscription's customer when status records no attachment of this value.
func (subscriptionExternal) attachDefault(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription,
	customerID, have string) (string, error) {
	pm, attached := defaultPaymentMethod(obj.Spec.DefaultPaymentMethod, &obj.Status.DefaultPaymentMethod, have)
	if attached {
		return pm, nil
	}
	pm, err := attachPaymentMethod(ctx, c, obj, obj.Spec.DefaultPaymentMethod, customerID)
	if err != nil {
		return "", err
	}
	obj.Status.DefaultPaymentMethod = &billingv1.AttachedPaymentMethod{Spec: obj.Spec.DefaultPaymentMethod, ID: pm}
	return pm, nil
}

func (subscriptionExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription,
	since time.Time) (string, error) {
	p := &stripego.SubscriptionListParams{Status: stripego.String("all"),
		CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	return findByUID(ctx, c, resSubscription, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.Subscriptions.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.SubscriptionList()
			return toStripeObjects(l.Data, func(o *stripego.Subscription) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete cancels now (Cancel), at the period end (CancelAtPeriodEnd), or leaves the subscription (Orphan).
func (subscriptionExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Subscription) error {
	switch obj.Spec.DeletionPolicy {
	case billingv1.SubscriptionOrphan:
		return nil
	case billingv1.SubscriptionCancelAtPeriodEnd:
		p := &stripego.SubscriptionParams{CancelAtPeriodEnd: stripego.Bool(true)}
		key := stripe.IdempotencyKey(string(obj.UID), "cancel-at-period-end", obj.Generation)
		_, err := stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: stripe.OpUpdate, IdempotencyKey: key},
			&p.Params, func() (*stripego.Subscription, error) { return c.API.Subscriptions.Update(obj.Status.ID, p) })
		if ce := stripe.Classify(err); ce != nil && ce.Class == stripe.ClassInvalidRequest {
			// Stripe refuses to change a subscription that has ended: decided on its state, not the message.
			if cur, gerr := getSubscription(ctx, c, obj.Status.ID, stripe.PriorityHigh); gerr == nil && ended(cur) {
				return nil
			}
		}
		return err
	default:
		p := &stripego.SubscriptionCancelParams{}
		key := stripe.IdempotencyKey(string(obj.UID), "cancel", obj.Generation)
		_, err := stripe.Call(ctx, c, stripe.Op{Resource: resSubscription, Operation: stripe.OpCancel, IdempotencyKey: key},
			&p.Params, func() (*stripego.Subscription, error) { return c.API.Subscriptions.Cancel(obj.Status.ID, p) })
		return err
	}
}
