package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=meters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=meters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=meters/finalizers,verbs=update

const (
	kindMeter = "Meter"
	resMeter  = "billing_meter"
	// opDeactivate and opReactivate are a meter's status changes (Stripe cannot delete a meter).
	opDeactivate = "deactivate"
	opReactivate = "reactivate"
)

// Stripe's defaults of a meter's payload keys.
const (
	defaultMeterCustomerKey = "stripe_customer_id"
	defaultMeterValueKey    = "value"
)

// meterExternal maps a Meter to a Stripe billing meter. Stripe lets only the display name change, and a meter
// carries no metadata: its event_name, which Stripe keeps unique among the account's meters, is what finds a meter
// whose create was not recorded (Find).
type meterExternal struct {
	standalone[*billingv1.Meter]
}

func (meterExternal) Kind() string { return kindMeter }

// meterKind is the Meter's registry entry.
func meterKind() kindEntry {
	return entry(kindMeter, "billing.meter", resMeter, func() *billingv1.Meter { return &billingv1.Meter{} },
		func() *billingv1.MeterList { return &billingv1.MeterList{} },
		func(loopDeps) External[*billingv1.Meter] { return meterExternal{} },
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList, opDeactivate, opReactivate)
}

func (meterExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.Meter) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// meterKeys are the spec's payload keys, with Stripe's defaults.
func meterKeys(spec *billingv1.MeterSpec) (customer, value string) {
	customer, value = defaultMeterCustomerKey, defaultMeterValueKey
	if spec.CustomerMapping != nil {
		customer = spec.CustomerMapping.EventPayloadKey
	}
	if spec.ValueSettings != nil {
		value = spec.ValueSettings.EventPayloadKey
	}
	return customer, value
}

// meterImmutableDiff names the immutable fields in which the Stripe meter differs from the spec, with both values.
func meterImmutableDiff(spec *billingv1.MeterSpec, cur *stripego.BillingMeter) []string {
	var diff []string
	differ := func(field, want, have string) {
		if want != have {
			diff = append(diff, fmt.Sprintf("%s (spec %s, Stripe %s)", field, want, have))
		}
	}
	differ("eventName", spec.EventName, cur.EventName)
	var formula, customer, value string
	if cur.DefaultAggregation != nil {
		formula = string(cur.DefaultAggregation.Formula)
	}
	if cur.CustomerMapping != nil {
		customer = cur.CustomerMapping.EventPayloadKey
	}
	if cur.ValueSettings != nil {
		value = cur.ValueSettings.EventPayloadKey
	}
	wantCustomer, wantValue := meterKeys(spec)
	differ("defaultAggregation.formula", string(spec.DefaultAggregation.Formula), formula)
	differ("customerMapping.eventPayloadKey", wantCustomer, customer)
	differ("valueSettings.eventPayloadKey", wantValue, value)
	return diff
}

// meterChanges are the differences Update can fix: the display name, and an inactive meter (reactivated).
func meterChanges(spec *billingv1.MeterSpec, cur *stripego.BillingMeter) map[string]string {
	changed := map[string]string{}
	if spec.DisplayName != cur.DisplayName {
		changed["display_name"] = cur.DisplayName + "->" + spec.DisplayName
	}
	if cur.Status != stripego.BillingMeterStatusActive {
		changed["status"] = string(cur.Status) + "->" + string(stripego.BillingMeterStatusActive)
	}
	return changed
}

func getMeter(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.BillingMeter,
	error) {
	p := &stripego.BillingMeterParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resMeter, Operation: stripe.OpRetrieve, Priority: prio}, &p.Params,
		func() (*stripego.BillingMeter, error) { return c.API.BillingMeters.Get(id, p) })
}

func (meterExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Meter, id string,
	prio stripe.Priority, _ map[string]string) (Observation, error) {
	cur, err := getMeter(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	obj.Status.StripeState = string(cur.Status)
	if diff := meterImmutableDiff(&obj.Spec, cur); len(diff) > 0 {
		// Only an adopted meter can get here: the CRD refuses changes of these fields.
		return Observation{}, &stripe.Error{Class: stripe.ClassInvalidRequest, Message: "Stripe meter " + id +
			" differs from the spec in fields Stripe cannot change: " + strings.Join(diff, "; ") +
			"; make the spec match the meter, or create a new Meter"}
	}
	changed := meterChanges(&obj.Spec, cur)
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

func (meterExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Meter, key string,
	_ map[string]string) (string, error) {
	s := &obj.Spec
	customer, value := meterKeys(s)
	p := &stripego.BillingMeterParams{DisplayName: stripego.String(s.DisplayName),
		EventName: stripego.String(s.EventName), DefaultAggregation: &stripego.BillingMeterDefaultAggregationParams{
			Formula: stripego.String(string(s.DefaultAggregation.Formula))}}
	if s.CustomerMapping != nil {
		p.CustomerMapping = &stripego.BillingMeterCustomerMappingParams{EventPayloadKey: stripego.String(customer),
			Type: stripego.String(string(stripego.BillingMeterCustomerMappingTypeByID))}
	}
	if s.ValueSettings != nil {
		p.ValueSettings = &stripego.BillingMeterValueSettingsParams{EventPayloadKey: stripego.String(value)}
	}
	m, err := stripe.Call(ctx, c, stripe.Op{Resource: resMeter, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.BillingMeter, error) { return c.API.BillingMeters.New(p) })
	if err != nil {
		return "", err
	}
	obj.Status.StripeState = string(m.Status)
	return m.ID, nil
}

// Update renames the meter and reactivates it when it was deactivated outside the operator: a Meter that exists
// asks for an active meter.
func (meterExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Meter, _ map[string]string,
	obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getMeter)
	if err != nil {
		return err
	}
	changed := meterChanges(&obj.Spec, cur)
	if len(changed) == 0 {
		return nil
	}
	key := updateKey(obj, changed)
	if _, ok := changed["status"]; ok {
		p := &stripego.BillingMeterReactivateParams{}
		m, err := stripe.Call(ctx, c, stripe.Op{Resource: resMeter, Operation: opReactivate,
			IdempotencyKey: key + "-reactivate"}, &p.Params,
			func() (*stripego.BillingMeter, error) { return c.API.BillingMeters.Reactivate(obj.Status.ID, p) })
		if err != nil {
			return err
		}
		obj.Status.StripeState = string(m.Status)
	}
	if _, ok := changed["display_name"]; ok {
		p := &stripego.BillingMeterParams{DisplayName: stripego.String(obj.Spec.DisplayName)}
		if _, err := stripe.Call(ctx, c, stripe.Op{Resource: resMeter, Operation: stripe.OpUpdate,
			IdempotencyKey: key}, &p.Params,
			func() (*stripego.BillingMeter, error) { return c.API.BillingMeters.Update(obj.Status.ID, p) }); err != nil {
			return err
		}
	}
	return nil
}

// Find looks for a meter with the spec's event name created since `since`: a meter has no metadata to carry the
// UID stamp, and Stripe refuses a second meter with the same event name, so the name identifies the one this
// object's unrecorded create made.
func (meterExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Meter,
	since time.Time) (string, error) {
	p := &stripego.BillingMeterListParams{}
	uid := string(obj.UID)
	return findByUID(ctx, c, resMeter, &p.ListParams, uid, nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.BillingMeters.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.BillingMeterList()
			return toStripeObjects(l.Data, func(m *stripego.BillingMeter) (string, map[string]string) {
				if m.EventName == obj.Spec.EventName && m.Created >= since.Unix() {
					return m.ID, map[string]string{billingv1.MetadataUID: uid}
				}
				return m.ID, nil
			}), l.HasMore, nil
		})
}

// Delete deactivates the meter (Deactivate: it refuses new meter events; Stripe cannot delete a meter) or leaves
// it (Orphan). A meter already inactive is left as it is.
func (meterExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Meter) error {
	if obj.Spec.DeletionPolicy == billingv1.MeterOrphan {
		return nil
	}
	cur, err := getMeter(ctx, c, obj.Status.ID, stripe.PriorityHigh)
	if err != nil || cur.Status == stripego.BillingMeterStatusInactive {
		return err
	}
	p := &stripego.BillingMeterDeactivateParams{}
	key := stripe.IdempotencyKey(string(obj.UID), "deactivate", obj.Generation)
	_, err = stripe.Call(ctx, c, stripe.Op{Resource: resMeter, Operation: opDeactivate, IdempotencyKey: key},
		&p.Params, func() (*stripego.BillingMeter, error) { return c.API.BillingMeters.Deactivate(obj.Status.ID, p) })
	return err
}
