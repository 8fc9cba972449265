package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=promotioncodes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=promotioncodes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=promotioncodes/finalizers,verbs=update

const resPromotionCode = "promotion_code"

// promotionCodeExternal maps a PromotionCode to a Stripe promotion code. Stripe lets only active and metadata
// change, and cannot delete a promotion code: it is deactivated.
type promotionCodeExternal struct {
	never[*billingv1.PromotionCode]
	refs refResolver
}

func (promotionCodeExternal) Kind() string { return kindPromotionCode }

// Indexes of PromotionCodes by the objects they reference.
const (
	indexPromoCouponRef   = "spec.couponRef.name"
	indexPromoCustomerRef = "spec.customerRef.name"
)

// promotionCodeKind is the PromotionCode's registry entry: it waits for its Coupon (and its Customer, if limited
// to one) like a Price waits for its Product.
func promotionCodeKind() kindEntry {
	k := entry(kindPromotionCode, "promotion_code", resPromotionCode,
		func() *billingv1.PromotionCode { return &billingv1.PromotionCode{} },
		func() *billingv1.PromotionCodeList { return &billingv1.PromotionCodeList{} },
		func(d loopDeps) External[*billingv1.PromotionCode] {
			return promotionCodeExternal{refs: refResolver{cache: d.client, live: d.apiReader}}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	k.refs = []reference{
		{kind: kindCoupon, index: indexPromoCouponRef, extract: func(o client.Object) []string {
			if ref := o.(*billingv1.PromotionCode).Spec.CouponRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
		{kind: kindCustomer, index: indexPromoCustomerRef, extract: func(o client.Object) []string {
			if ref := o.(*billingv1.PromotionCode).Spec.CustomerRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
	}
	return k
}

// resolve finds the Stripe IDs of the coupon and the customer; msg says what is still missing.
func (e promotionCodeExternal) resolve(ctx context.Context, obj *billingv1.PromotionCode) (couponID, customerID,
	msg string, err error) {
	couponID, customerID = obj.Spec.CouponID, obj.Spec.CustomerID
	if ref := obj.Spec.CouponRef; ref != nil {
		if couponID, msg, err = e.refs.id(ctx, obj.Namespace, ref.Name, &billingv1.Coupon{}); err != nil || msg != "" {
			return "", "", msg, err
		}
	}
	if ref := obj.Spec.CustomerRef; ref != nil {
		if customerID, msg, err = e.refs.id(ctx, obj.Namespace, ref.Name, &billingv1.Customer{}); err != nil ||
			msg != "" {
			return "", "", msg, err
		}
	}
	return couponID, customerID, "", nil
}

func (e promotionCodeExternal) Dependencies(ctx context.Context, obj *billingv1.PromotionCode) (bool, string,
	error) {
	_, _, msg, err := e.resolve(ctx, obj)
	return msg == "", msg, err
}

// Stale implements External: a promotion code cannot move to another coupon or customer, so there is nothing to
// restore when a referenced object changed its Stripe ID (the next read reports the difference).
func (promotionCodeExternal) Stale(context.Context, *billingv1.PromotionCode) (bool, error) {
	return false, nil
}

func (promotionCodeExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.PromotionCode) (string,
	error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// promotionCodeImmutableDiff names the fields Stripe cannot change in which the promotion code differs from the
// spec, with both values.
func promotionCodeImmutableDiff(spec *billingv1.PromotionCodeSpec, couponID, customerID string,
	cur *stripego.PromotionCode) []string {
	var diff []string
	differ := func(field, want, have string) {
		if want != have {
			diff = append(diff, fmt.Sprintf("%s (spec %q, Stripe %q)", field, want, have))
		}
	}
	if !strings.EqualFold(spec.Code, cur.Code) { // Stripe compares codes regardless of case
		differ("code", spec.Code, cur.Code)
	}
	haveCoupon, haveCustomer := "", ""
	if cur.Coupon != nil {
		haveCoupon = cur.Coupon.ID
	}
	if cur.Customer != nil {
		haveCustomer = cur.Customer.ID
	}
	differ("coupon", couponID, haveCoupon)
	differ("customer", customerID, haveCustomer)
	differ("maxRedemptions", strconv.FormatInt(deref(spec.MaxRedemptions), 10),
		strconv.FormatInt(cur.MaxRedemptions, 10))
	var expires int64
	if spec.ExpiresAt != nil {
		expires = spec.ExpiresAt.Unix()
	}
	differ("expiresAt", strconv.FormatInt(expires, 10), strconv.FormatInt(cur.ExpiresAt, 10))
	want, have := billingv1.PromotionCodeRestrictions{}, billingv1.PromotionCodeRestrictions{}
	if spec.Restrictions != nil {
		want = *spec.Restrictions
	}
	if r := cur.Restrictions; r != nil {
		have.FirstTimeTransaction = r.FirstTimeTransaction
		if r.MinimumAmount != 0 {
			have.MinimumAmount, have.MinimumAmountCurrency = &r.MinimumAmount, string(r.MinimumAmountCurrency)
		}
	}
	differ("restrictions.firstTimeTransaction", strconv.FormatBool(want.FirstTimeTransaction),
		strconv.FormatBool(have.FirstTimeTransaction))
	differ("restrictions.minimumAmount", strconv.FormatInt(deref(want.MinimumAmount), 10)+" "+
		want.MinimumAmountCurrency, strconv.FormatInt(deref(have.MinimumAmount), 10)+" "+have.MinimumAmountCurrency)
	return diff
}

// promotionCodeParams renders the mutable fields that differ from cur (all set ones when cur is nil).
func promotionCodeParams(spec *billingv1.PromotionCodeSpec, stamp map[string]string, cur *stripego.PromotionCode) (
	*stripego.PromotionCodeParams, map[string]string) {
	p := &stripego.PromotionCodeParams{}
	changed := map[string]string{}
	have := stripego.PromotionCode{Active: true}
	if cur != nil {
		have = *cur
	}
	if active := spec.Active == nil || *spec.Active; active != have.Active {
		p.Active = stripego.Bool(active)
		changed["active"] = strconv.FormatBool(active)
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func getPromotionCode(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (
	*stripego.PromotionCode, error) {
	p := &stripego.PromotionCodeParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resPromotionCode, Operation: stripe.OpRetrieve, Priority: prio},
		&p.Params, func() (*stripego.PromotionCode, error) { return c.API.PromotionCodes.Get(id, p) })
}

func updatePromotionCode(ctx context.Context, c *stripe.Client, id, key string,
	p *stripego.PromotionCodeParams) error {
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resPromotionCode, Operation: stripe.OpUpdate,
		IdempotencyKey: key}, &p.Params, func() (*stripego.PromotionCode, error) {
		return c.API.PromotionCodes.Update(id, p)
	})
	return err
}

// setPromotionCodeStatus copies Stripe's view into status.
func setPromotionCodeStatus(obj *billingv1.PromotionCode, cur *stripego.PromotionCode) {
	obj.Status.CouponID = ""
	if cur.Coupon != nil {
		obj.Status.CouponID = cur.Coupon.ID
	}
	obj.Status.Active = stripego.Bool(cur.Active)
	obj.Status.TimesRedeemed = cur.TimesRedeemed
}

func (e promotionCodeExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.PromotionCode, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getPromotionCode(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	setPromotionCodeStatus(obj, cur)
	couponID, customerID, _, err := e.resolve(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	if diff := promotionCodeImmutableDiff(&obj.Spec, couponID, customerID, cur); len(diff) > 0 {
		return Observation{}, &stripe.Error{Class: stripe.ClassInvalidRequest, Message: "Stripe promotion code " +
			id + " differs from the spec in fields Stripe cannot change: " + strings.Join(diff, "; ") +
			"; make the spec match it, or create a new PromotionCode"}
	}
	_, changed := promotionCodeParams(&obj.Spec, stamp, cur)
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

func (e promotionCodeExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.PromotionCode,
	key string, stamp map[string]string) (string, error) {
	couponID, customerID, msg, err := e.resolve(ctx, obj)
	if err != nil {
		return "", err
	}
	if msg != "" {
		return "", fmt.Errorf("%s", msg)
	}
	s := &obj.Spec
	p, _ := promotionCodeParams(s, stamp, nil)
	p.Coupon, p.Code = stripego.String(couponID), stripego.String(s.Code)
	if customerID != "" {
		p.Customer = stripego.String(customerID)
	}
	if s.MaxRedemptions != nil {
		p.MaxRedemptions = stripego.Int64(*s.MaxRedemptions)
	}
	if s.ExpiresAt != nil {
		p.ExpiresAt = stripego.Int64(s.ExpiresAt.Unix())
	}
	if r := s.Restrictions; r != nil {
		p.Restrictions = &stripego.PromotionCodeRestrictionsParams{}
		if r.FirstTimeTransaction {
			p.Restrictions.FirstTimeTransaction = stripego.Bool(true)
		}
		if r.MinimumAmount != nil {
			p.Restrictions.MinimumAmount = stripego.Int64(*r.MinimumAmount)
			p.Restrictions.MinimumAmountCurrency = stripego.String(r.MinimumAmountCurrency)
		}
	}
	pc, err := stripe.Call(ctx, c, stripe.Op{Resource: resPromotionCode, Operation: stripe.OpCreate,
		IdempotencyKey: key}, &p.Params, func() (*stripego.PromotionCode, error) {
		return c.API.PromotionCodes.New(p)
	})
	if err != nil {
		return "", err
	}
	setPromotionCodeStatus(obj, pc)
	return pc.ID, nil
}

func (promotionCodeExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.PromotionCode,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getPromotionCode)
	if err != nil {
		return err
	}
	p, changed := promotionCodeParams(&obj.Spec, stamp, cur)
	if len(changed) == 0 {
		return nil
	}
	if err := updatePromotionCode(ctx, c, obj.Status.ID, updateKey(obj, changed), p); err != nil {
		return err
	}
	if p.Active != nil {
		obj.Status.Active = stripego.Bool(*p.Active)
	}
	return nil
}

func (promotionCodeExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.PromotionCode,
	since time.Time) (string, error) {
	p := &stripego.PromotionCodeListParams{
		CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	return findByUID(ctx, c, resPromotionCode, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.PromotionCodes.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.PromotionCodeList()
			return toStripeObjects(l.Data, func(o *stripego.PromotionCode) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete deactivates the promotion code (Deactivate; Stripe cannot delete one) or leaves it (Orphan).
func (promotionCodeExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.PromotionCode) error {
	if obj.Spec.DeletionPolicy == billingv1.PromotionCodeOrphan {
		return nil
	}
	key := stripe.IdempotencyKey(string(obj.UID), "deactivate", obj.Generation)
	return updatePromotionCode(ctx, c, obj.Status.ID, key,
		&stripego.PromotionCodeParams{Active: stripego.Bool(false)})
}
