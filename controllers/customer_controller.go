package controllers

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=customers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=customers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=customers/finalizers,verbs=update

const resCustomer = "customer"

// customerExternal maps a Customer to a Stripe customer.
type customerExternal struct {
	standalone[*billingv1.Customer]
}

func (customerExternal) Kind() string { return kindCustomer }

// customerKind is the Customer's registry entry.
func customerKind() kindEntry {
	return entry(kindCustomer, "customer", resCustomer, func() *billingv1.Customer { return &billingv1.Customer{} },
		func() *billingv1.CustomerList { return &billingv1.CustomerList{} },
		func(loopDeps) External[*billingv1.Customer] { return customerExternal{} },
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpDelete, stripe.OpList)
}

func (customerExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.Customer) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// customerParams renders the fields of the spec that differ from cur (all of them when cur is nil), and whether
// any did. Metadata is the user's metadata plus the stamp; keys Stripe has that the spec dropped are unset. pm is
// the payment method ID that should be the invoice default (see defaultPaymentMethod; on create, the spec's value,
// which the same request attaches).
func customerParams(spec *billingv1.CustomerSpec, stamp map[string]string, cur *stripego.Customer, pm string) (
	*stripego.CustomerParams, map[string]string) {
	p := &stripego.CustomerParams{}
	changed := map[string]string{}
	str := func(name, want, have string, set func(*string)) {
		if cur == nil && want == "" || cur != nil && want == have {
			return
		}
		set(stripego.String(want))
		changed[name] = have + "->" + want
	}
	var have stripego.Customer
	if cur != nil {
		have = *cur
	}
	str("email", spec.Email, have.Email, func(v *string) { p.Email = v })
	str("name", spec.Name, have.Name, func(v *string) { p.Name = v })
	str("description", spec.Description, have.Description, func(v *string) { p.Description = v })
	str("phone", spec.Phone, have.Phone, func(v *string) { p.Phone = v })
	if want, got := addressOf(spec.Address), addressFrom(have.Address); want != got && (cur != nil || want != "") {
		if spec.Address == nil {
			p.Address = &stripego.AddressParams{Line1: stripego.String(""), Line2: stripego.String(""),
				City: stripego.String(""), State: stripego.String(""), PostalCode: stripego.String(""),
				Country: stripego.String("")}
		} else {
			a := spec.Address
			p.Address = &stripego.AddressParams{Line1: stripego.String(a.Line1), Line2: stripego.String(a.Line2),
				City: stripego.String(a.City), State: stripego.String(a.State),
				PostalCode: stripego.String(a.PostalCode), Country: stripego.String(a.Country)}
		}
		changed["address"] = got + "->" + want
	}
	if havePM := customerDefaultPM(cur); pm != havePM && (cur != nil || pm != "") {
		// payment_method (attach on create) exists only on create, where the same request may name it as the
		// default; an update sets the default to a payment method attached before (Update).
		if pm != "" && cur == nil {
			p.PaymentMethod = stripego.String(pm)
		}
		p.InvoiceSettings = &stripego.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripego.String(pm)}
		changed["default_payment_method"] = havePM + "->" + pm
	}
	if cur == nil && spec.TestClock != "" {
		p.TestClock = stripego.String(spec.TestClock)
	}
	if want, got := taxExemptOf(spec.TaxExempt), string(have.TaxExempt); want != taxExemptOf(billingv1.TaxExempt(got)) {
		p.TaxExempt = stripego.String(want)
		changed["tax_exempt"] = got + "->" + want
	}
	if cur == nil {
		p.TaxIDData = taxIDData(spec.TaxIDs) // created with the customer
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

// customerDefaultPM is the customer's invoice default payment method in Stripe, or "".
func customerDefaultPM(cur *stripego.Customer) string {
	if cur == nil || cur.InvoiceSettings == nil || cur.InvoiceSettings.DefaultPaymentMethod == nil {
		return ""
	}
	return cur.InvoiceSettings.DefaultPaymentMethod.ID
}

// taxExemptOf is a tax status as Stripe names it: none unless set.
func taxExemptOf(v billingv1.TaxExempt) string {
	if v == "" {
		return string(billingv1.TaxExemptNone)
	}
	return string(v)
}

func addressOf(a *billingv1.Address) string {
	if a == nil {
		return ""
	}
	return a.Line1 + "|" + a.Line2 + "|" + a.City + "|" + a.State + "|" + a.PostalCode + "|" + a.Country
}

func addressFrom(a *stripego.Address) string {
	if a == nil {
		return ""
	}
	s := a.Line1 + "|" + a.Line2 + "|" + a.City + "|" + a.State + "|" + a.PostalCode + "|" + a.Country
	if s == "|||||" {
		return ""
	}
	return s
}

func (customerExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Customer, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getCustomer(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	if cur.Deleted {
		return Observation{}, nil
	}
	taxIDs, err := customerTaxIDs(ctx, c, cur)
	if err != nil {
		return Observation{}, err
	}
	obj.Status.TaxIDs = taxIDStatus(taxIDs)
	create, remove := taxIDChanges(obj.Spec.TaxIDs, taxIDs)
	pm, attached := defaultPaymentMethod(obj.Spec.DefaultPaymentMethod, &obj.Status.DefaultPaymentMethod,
		customerDefaultPM(cur))
	_, changed := customerParams(&obj.Spec, stamp, cur, pm)
	if !attached {
		// Update attaches the spec's payment method first, then makes it the default.
		changed["default_payment_method"] = customerDefaultPM(cur) + "->" + obj.Spec.DefaultPaymentMethod
	}
	for _, w := range create {
		changed["tax_ids."+string(w.Type)+"."+w.Value] = "->" + w.Value
	}
	for _, h := range remove {
		changed["tax_ids."+string(h.Type)+"."+h.ID] = h.Value + "->"
	}
	return Observation{Exists: true, UpToDate: attached && len(changed) == 0, Current: cur,
		Drift: driftOf(changed)}, nil
}

func getCustomer(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.Customer, error) {
	p := &stripego.CustomerParams{}
	p.AddExpand("tax_ids")
	return stripe.Call(ctx, c, stripe.Op{Resource: resCustomer, Operation: stripe.OpRetrieve, Priority: prio}, &p.Params,
		func() (*stripego.Customer, error) { return c.API.Customers.Get(id, p) })
}

func (customerExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Customer, key string,
	stamp map[string]string) (string, error) {
	// Stripe's one-request form: payment_method attaches the spec's value and names it as the default.
	p, _ := customerParams(&obj.Spec, stamp, nil, obj.Spec.DefaultPaymentMethod)
	p.AddExpand("tax_ids")
	cus, err := stripe.Call(ctx, c, stripe.Op{Resource: resCustomer, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Customer, error) { return c.API.Customers.New(p) })
	if err != nil {
		return "", err
	}
	if cus.TaxIDs != nil {
		obj.Status.TaxIDs = taxIDStatus(cus.TaxIDs.Data)
	}
	obj.Status.DefaultPaymentMethod = nil
	if pm := customerDefaultPM(cus); obj.Spec.DefaultPaymentMethod != "" && pm != "" {
		obj.Status.DefaultPaymentMethod = &billingv1.AttachedPaymentMethod{Spec: obj.Spec.DefaultPaymentMethod, ID: pm}
	}
	return cus.ID, nil
}

func (customerExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Customer,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getCustomer)
	if err != nil {
		return err
	}
	pm, attached := defaultPaymentMethod(obj.Spec.DefaultPaymentMethod, &obj.Status.DefaultPaymentMethod,
		customerDefaultPM(cur))
	if !attached {
		// Attached first: Stripe refuses a default that is not attached to the customer.
		if pm, err = attachPaymentMethod(ctx, c, obj, obj.Spec.DefaultPaymentMethod, obj.Status.ID); err != nil {
			return err
		}
		obj.Status.DefaultPaymentMethod = &billingv1.AttachedPaymentMethod{Spec: obj.Spec.DefaultPaymentMethod, ID: pm}
	}
	taxIDs, err := customerTaxIDs(ctx, c, cur)
	if err != nil {
		return err
	}
	if err := syncTaxIDs(ctx, c, obj, taxIDs); err != nil {
		return err
	}
	p, changed := customerParams(&obj.Spec, stamp, cur, pm)
	if len(changed) == 0 {
		return nil
	}
	key := updateKey(obj, changed)
	_, err = stripe.Call(ctx, c, stripe.Op{Resource: resCustomer, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Customer, error) { return c.API.Customers.Update(obj.Status.ID, p) })
	return err
}

func (customerExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Customer,
	since time.Time) (string, error) {
	p := &stripego.CustomerListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	defaults := map[string]string{}
	id, err := findByUID(ctx, c, resCustomer, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.Customers.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.CustomerList()
			return toStripeObjects(l.Data, func(o *stripego.Customer) (string, map[string]string) {
				defaults[o.ID] = customerDefaultPM(o)
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
	// A create of this generation that reached Stripe attached spec.defaultPaymentMethod and made it the default:
	// recorded as Create records it, so that it is not attached a second time.
	if pend := PendingCreate(obj); err == nil && id != "" && pend != nil && pend.Generation == obj.Generation &&
		obj.Spec.DefaultPaymentMethod != "" && defaults[id] != "" {
		obj.Status.DefaultPaymentMethod = &billingv1.AttachedPaymentMethod{Spec: obj.Spec.DefaultPaymentMethod,
			ID: defaults[id]}
	}
	return id, err
}

func (customerExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Customer) error {
	if obj.Spec.DeletionPolicy != billingv1.CustomerDelete {
		return nil
	}
	p := &stripego.CustomerParams{}
	key := stripe.IdempotencyKey(string(obj.UID), "delete", obj.Generation)
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resCustomer, Operation: stripe.OpDelete, IdempotencyKey: key},
		&p.Params, func() (*stripego.Customer, error) { return c.API.Customers.Del(obj.Status.ID, p) })
	return err
}
