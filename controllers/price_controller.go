package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=prices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=prices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=prices/finalizers,verbs=update

const resPrice = "price"

// priceExternal maps a Price to a Stripe price. Stripe prices are immutable in amount, currency, recurrence and
// product: a change to one of those rolls the price to a successor.
type priceExternal struct {
	client client.Client
	// live reads the API server past the cache: whether the Price that holds a lookup key still exists.
	live    client.Reader
	cluster string
	refs    refResolver
}

func (priceExternal) Kind() string { return kindPrice }

// indexProductRef indexes Prices by the Product they reference.
const indexProductRef = "spec.productRef.name"

// indexPriceMeterRef indexes metered Prices by the Meter they reference.
const indexPriceMeterRef = "spec.recurring.meterRef.name"

// priceKind is the Price's registry entry: a Price waits for its Product, and a metered Price for its Meter.
func priceKind() kindEntry {
	k := entry(kindPrice, "price", resPrice, func() *billingv1.Price { return &billingv1.Price{} },
		func() *billingv1.PriceList { return &billingv1.PriceList{} },
		func(d loopDeps) External[*billingv1.Price] {
			return priceExternal{client: d.client, live: d.apiReader, cluster: d.opts.ClusterName,
				refs: refResolver{cache: d.client, live: d.apiReader}}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	k.refs = []reference{{kind: kindProduct, index: indexProductRef, extract: func(o client.Object) []string {
		if ref := o.(*billingv1.Price).Spec.ProductRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}}, {kind: kindMeter, index: indexPriceMeterRef, extract: func(o client.Object) []string {
		if r := o.(*billingv1.Price).Spec.Recurring; r != nil && r.MeterRef != nil {
			return []string{r.MeterRef.Name}
		}
		return nil
	}}}
	return k
}

// meterID resolves spec.recurring.meterRef or meterID; "" for a price that is not metered on a meter, or while the
// referenced Meter has no Stripe ID (msg says so).
func (e priceExternal) meterID(ctx context.Context, obj *billingv1.Price) (string, string, error) {
	r := obj.Spec.Recurring
	switch {
	case r == nil:
		return "", "", nil
	case r.MeterID != "":
		return r.MeterID, "", nil
	case r.MeterRef != nil:
		return e.refs.id(ctx, obj.Namespace, r.MeterRef.Name, &billingv1.Meter{})
	}
	return "", "", nil
}

// productID resolves spec.productRef or spec.productID; "" while the referenced Product has no Stripe ID.
func (e priceExternal) productID(ctx context.Context, obj *billingv1.Price) (string, string, error) {
	if obj.Spec.ProductID != "" {
		return obj.Spec.ProductID, "", nil
	}
	return e.refs.id(ctx, obj.Namespace, obj.Spec.ProductRef.Name, &billingv1.Product{})
}

// Dependencies: the Product has a Stripe ID, and no other Price of the namespace that has a Stripe price claims the
// same lookup key (a rename applied as a create before the delete): the new Price waits until the old one is
// deleted or lets the key go, then takes it over (see takeLookupKey).
func (e priceExternal) Dependencies(ctx context.Context, obj *billingv1.Price) (bool, string, error) {
	id, msg, err := e.productID(ctx, obj)
	if id == "" || err != nil {
		return false, msg, err
	}
	if r := obj.Spec.Recurring; r != nil && r.MeterRef != nil {
		if id, msg, err := e.meterID(ctx, obj); id == "" || err != nil {
			return false, msg, err
		}
	}
	key := obj.Spec.LookupKey
	if key == "" || obj.Spec.TransferLookupKey || obj.Status.ID != "" || PendingCreate(obj) != nil {
		return true, "", nil
	}
	l := &billingv1.PriceList{}
	if err := e.client.List(ctx, l, client.InNamespace(obj.Namespace)); err != nil {
		return false, "", fmt.Errorf("listing Prices: %w", err)
	}
	for _, other := range l.Items {
		// A Price being deleted is waited for too: its deletion policy (archiving it, unsetting it as the default
		// price) runs before the key moves, so the two never race on the product's default_price.
		if other.Name != obj.Name && other.Spec.LookupKey == key && other.Status.ID != "" {
			return false, fmt.Sprintf("lookup key %q is held by Price %s/%s (%s); it is taken over once that Price "+
				"is deleted or changes its lookupKey, or at once with spec.transferLookupKey: true", key,
				other.Namespace, other.Name, other.Status.ID), nil
		}
	}
	return true, "", nil
}

// Stale: the referenced Product (or Meter) now has another Stripe ID than the price's product (or meter).
func (e priceExternal) Stale(ctx context.Context, obj *billingv1.Price) (bool, error) {
	id, _, err := e.productID(ctx, obj)
	if err = ignoreMissingRef(err); err != nil || (id != "" && id != obj.Status.ProductID) {
		return err == nil, err
	}
	meter, _, err := e.meterID(ctx, obj)
	return meter != "" && meter != obj.Status.MeterID, ignoreMissingRef(err)
}

func (priceExternal) AdoptID(ctx context.Context, c *stripe.Client, obj *billingv1.Price) (string, error) {
	a := obj.Spec.Adopt
	if a == nil {
		return "", nil
	}
	if a.ID != "" {
		return a.ID, nil
	}
	p := &stripego.PriceListParams{LookupKeys: stripego.StringSlice([]string{a.LookupKey})}
	p.Single = true
	id, err := stripe.Call(ctx, c, stripe.Op{Resource: resPrice, Operation: stripe.OpList}, &p.ListParams,
		func() (string, error) {
			it := c.API.Prices.List(p)
			if err := it.Err(); err != nil {
				return "", err
			}
			if l := it.PriceList(); len(l.Data) > 0 {
				return l.Data[0].ID, nil
			}
			return "", nil
		})
	if err == nil && id == "" {
		return "", &stripe.Error{Class: stripe.ClassNotFound,
			Message: "spec.adopt.lookupKey " + a.LookupKey + " names no Stripe price"}
	}
	return id, err
}

// immutableDiff says which immutable fields of cur differ from the spec (a change to any rolls the price), in
// the form of the mutable changes: field -> "<Stripe's value>-><the spec's value>".
func immutableDiff(spec *billingv1.PriceSpec, productID, meterID string, cur *stripego.Price) map[string]string {
	diff := map[string]string{}
	if cur.UnitAmount != spec.UnitAmount {
		diff["unit_amount"] = strconv.FormatInt(cur.UnitAmount, 10) + "->" + strconv.FormatInt(spec.UnitAmount, 10)
	}
	if string(cur.Currency) != spec.Currency {
		diff["currency"] = string(cur.Currency) + "->" + spec.Currency
	}
	if cur.Product == nil || cur.Product.ID != productID {
		have := ""
		if cur.Product != nil {
			have = cur.Product.ID
		}
		diff["product"] = have + "->" + productID
	}
	want := ""
	if r := spec.Recurring; r != nil {
		usage := r.UsageType
		if usage == "" {
			usage = billingv1.UsageLicensed
		}
		want = fmt.Sprintf("%s/%d/%s", r.Interval, max(r.IntervalCount, 1), usage)
	}
	have := ""
	if r := cur.Recurring; r != nil {
		have = fmt.Sprintf("%s/%d/%s", r.Interval, r.IntervalCount, r.UsageType)
	}
	if have != want {
		diff["recurring"] = have + "->" + want
	}
	haveMeter := ""
	if cur.Recurring != nil {
		haveMeter = cur.Recurring.Meter
	}
	if haveMeter != meterID {
		diff["recurring.meter"] = haveMeter + "->" + meterID
	}
	return diff
}

// mutableParams renders the mutable fields that differ from cur (all set ones when cur is nil).
func mutableParams(spec *billingv1.PriceSpec, stamp map[string]string, cur *stripego.Price) (
	*stripego.PriceParams, map[string]string) {
	p := &stripego.PriceParams{}
	changed := map[string]string{}
	have := stripego.Price{Active: true, TaxBehavior: stripego.PriceTaxBehaviorUnspecified}
	if cur != nil {
		have = *cur
	}
	if spec.Nickname != have.Nickname {
		p.Nickname = stripego.String(spec.Nickname)
		changed["nickname"] = have.Nickname + "->" + spec.Nickname
	}
	if spec.LookupKey != have.LookupKey {
		p.LookupKey = stripego.String(spec.LookupKey)
		changed["lookup_key"] = have.LookupKey + "->" + spec.LookupKey
	}
	if tb := string(spec.TaxBehavior); tb != "" && tb != string(have.TaxBehavior) {
		p.TaxBehavior = stripego.String(tb)
		changed["tax_behavior"] = string(have.TaxBehavior) + "->" + tb
	}
	if active := spec.Active == nil || *spec.Active; active != have.Active {
		p.Active = stripego.Bool(active)
		changed["active"] = strconv.FormatBool(have.Active) + "->" + strconv.FormatBool(active)
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func getPrice(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.Price, error) {
	p := &stripego.PriceParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resPrice, Operation: stripe.OpRetrieve, Priority: prio}, &p.Params,
		func() (*stripego.Price, error) { return c.API.Prices.Get(id, p) })
}

func updatePrice(ctx context.Context, c *stripe.Client, id, key string, p *stripego.PriceParams) error {
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resPrice, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Price, error) { return c.API.Prices.Update(id, p) })
	return err
}

func (e priceExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Price, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getPrice(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	productID, _, err := e.productID(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	meterID, _, err := e.meterID(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	if cur.Product != nil {
		obj.Status.ProductID = cur.Product.ID
	}
	obj.Status.MeterID = ""
	if cur.Recurring != nil {
		obj.Status.MeterID = cur.Recurring.Meter
	}
	_, changed := mutableParams(&obj.Spec, stamp, cur)
	if immutable := immutableDiff(&obj.Spec, productID, meterID, cur); len(immutable) > 0 {
		// The successor is created from the whole spec: every difference is part of the plan.
		maps.Copy(changed, immutable)
		return Observation{Exists: true, Replace: true, Current: cur, Drift: driftOf(changed)}, nil
	}
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

// Create creates the price, or its successor when status.id still names the price being replaced: the successor
// takes the lookup key with transfer_lookup_key.
func (e priceExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Price, key string,
	stamp map[string]string) (string, error) {
	productID, _, err := e.productID(ctx, obj)
	if err != nil {
		return "", err
	}
	meterID, msg, err := e.meterID(ctx, obj)
	if err != nil {
		return "", err
	}
	if msg != "" {
		return "", fmt.Errorf("%s", msg)
	}
	p, _ := mutableParams(&obj.Spec, stamp, nil)
	p.Product = stripego.String(productID)
	p.Currency = stripego.String(obj.Spec.Currency)
	p.UnitAmount = stripego.Int64(obj.Spec.UnitAmount)
	if r := obj.Spec.Recurring; r != nil {
		p.Recurring = &stripego.PriceRecurringParams{Interval: stripego.String(string(r.Interval)),
			IntervalCount: stripego.Int64(max(r.IntervalCount, 1))}
		if r.UsageType != "" {
			p.Recurring.UsageType = stripego.String(string(r.UsageType))
		}
		if meterID != "" {
			p.Recurring.Meter = stripego.String(meterID)
		}
	}
	var holder *stripego.Price
	switch {
	case obj.Spec.LookupKey == "":
	case obj.Status.ID != "": // a rollover: the key moves from this Price's own price; Replaced moves the default
		p.TransferLookupKey = stripego.Bool(true)
	case obj.Spec.TransferLookupKey:
		// Taken from whichever price holds it; known first, so that its product's default moves too.
		if holder, err = e.lookupKeyHolder(ctx, c, obj.Spec.LookupKey); err != nil {
			return "", err
		}
		p.TransferLookupKey = stripego.Bool(true)
	}
	var newID string
	took, err := e.takeLookupKey(ctx, obj, p, key, func(p *stripego.PriceParams, key string) error {
		pr, err := stripe.Call(ctx, c, stripe.Op{Resource: resPrice, Operation: stripe.OpCreate, IdempotencyKey: key},
			&p.Params, func() (*stripego.Price, error) { return c.API.Prices.New(p) })
		if err == nil {
			newID = pr.ID
		}
		return err
	}, c)
	if err != nil {
		return "", err
	}
	obj.Status.ProductID, obj.Status.MeterID = productID, meterID
	if took != nil {
		holder = took
	}
	e.inheritDefault(ctx, c, obj, holder, newID)
	return newID, nil
}

// metadataDefaultPriceOf marks a price archived with its object while it was its product's default price (the
// value is the product): the Price that takes its lookup key over becomes the default in its place.
const metadataDefaultPriceOf = "k8s_default_price_of"

// takeLookupKey sends a create or an update carrying spec.lookupKey. When Stripe refuses it because another price
// holds the key, the key is handed over (sent again with transfer_lookup_key, under an idempotency key derived from
// key, so a replay after a crash takes the same path) if the holder is archived, was created by this operator for
// an object that no longer exists or no longer claims the key, or spec.transferLookupKey is set; otherwise the error
// names the holder and the field to set. It returns the price the key was taken from, or nil.
func (e priceExternal) takeLookupKey(ctx context.Context, obj *billingv1.Price, p *stripego.PriceParams, key string,
	send func(p *stripego.PriceParams, key string) error, c *stripe.Client) (*stripego.Price, error) {
	err := send(p, key)
	// Decided on state, not on Stripe's message: a 400 to a request that set a lookup key is a conflict when
	// another price holds that key.
	ce := stripe.Classify(err)
	if ce == nil || ce.Class != stripe.ClassInvalidRequest || p.LookupKey == nil || *p.LookupKey == "" ||
		p.TransferLookupKey != nil {
		return nil, err
	}
	holder, herr := e.lookupKeyHolder(ctx, c, *p.LookupKey)
	if herr != nil {
		return nil, herr
	}
	if holder == nil || holder.ID == obj.Status.ID {
		return nil, err
	}
	if why, err := e.keyClaimed(ctx, obj, holder); err != nil || why != "" {
		if err != nil {
			return nil, err
		}
		return nil, &stripe.Error{Class: stripe.ClassInvalidRequest, Param: "lookup_key", RequestID: ce.RequestID,
			Message: fmt.Sprintf("lookup key %q is held by %s, %s; set spec.transferLookupKey: true to take it over",
				obj.Spec.LookupKey, holder.ID, why)}
	}
	retry := *p
	retry.TransferLookupKey = stripego.Bool(true)
	return holder, send(&retry, stripe.IdempotencyKey(string(obj.UID), "transfer-lookup-key", obj.Generation, key))
}

// lookupKeyHolder is the price that holds a lookup key, or nil.
func (e priceExternal) lookupKeyHolder(ctx context.Context, c *stripe.Client, key string) (*stripego.Price, error) {
	p := &stripego.PriceListParams{LookupKeys: stripego.StringSlice([]string{key})}
	p.Single = true
	return stripe.Call(ctx, c, stripe.Op{Resource: resPrice, Operation: stripe.OpList}, &p.ListParams,
		func() (*stripego.Price, error) {
			it := c.API.Prices.List(p)
			if err := it.Err(); err != nil {
				return nil, err
			}
			if l := it.PriceList(); len(l.Data) > 0 {
				return l.Data[0], nil
			}
			return nil, nil
		})
}

// keyClaimed says why the holder of obj's lookup key keeps it ("" when obj may take it): it is active and not
// this operator's, or its Price still exists and claims the key.
func (e priceExternal) keyClaimed(ctx context.Context, obj *billingv1.Price, holder *stripego.Price) (string,
	error) {
	md := holder.Metadata
	switch {
	case !holder.Active, holder.ID == obj.Status.ID, slices.Contains(obj.Status.PreviousIDs, holder.ID),
		md[billingv1.MetadataUID] == string(obj.UID):
		return "", nil
	case md[billingv1.MetadataKind] != kindPrice || md[billingv1.MetadataCluster] != e.cluster ||
		md[billingv1.MetadataUID] == "" || e.live == nil:
		return "an active price not managed by this operator", nil
	}
	other := &billingv1.Price{}
	err := e.live.Get(ctx, types.NamespacedName{Namespace: md[billingv1.MetadataNamespace],
		Name: md[billingv1.MetadataName]}, other)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if string(other.UID) != md[billingv1.MetadataUID] || !other.DeletionTimestamp.IsZero() ||
		other.Spec.LookupKey != obj.Spec.LookupKey {
		return "", nil
	}
	return fmt.Sprintf("the price of Price %s/%s, which still claims the key", other.Namespace, other.Name), nil
}

// inheritDefault makes newID its product's default price in place of the price it took the lookup key from, when
// that price was the default (or was archived as the default: metadataDefaultPriceOf) of the same product. It runs
// after the price holds the key, so a failure is logged, not returned: an error would make the loop send the create
// or update again, which no longer meets the holder.
func (e priceExternal) inheritDefault(ctx context.Context, c *stripe.Client, obj *billingv1.Price,
	holder *stripego.Price, newID string) {
	productID := obj.Status.ProductID
	if holder == nil || holder.Product == nil || holder.Product.ID != productID || productID == "" {
		return
	}
	prod, err := getProduct(ctx, c, productID, stripe.PriorityHigh)
	if err == nil {
		cur := ""
		if prod.DefaultPrice != nil {
			cur = prod.DefaultPrice.ID
		}
		if cur != holder.ID && (cur != "" || holder.Metadata[metadataDefaultPriceOf] != productID) {
			return
		}
		err = e.setDefaultPrice(ctx, c, obj, cur, newID)
	}
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Moving the product's default price to the price that took the lookup key",
			"stripeID", newID, "previous", holder.ID)
	}
}

func (e priceExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Price,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getPrice)
	if err != nil {
		return err
	}
	p, changed := mutableParams(&obj.Spec, stamp, cur)
	if len(changed) == 0 {
		return nil
	}
	if _, ok := changed["lookup_key"]; ok && obj.Spec.LookupKey != "" && obj.Spec.TransferLookupKey {
		p.TransferLookupKey = stripego.Bool(true)
	}
	holder, err := e.takeLookupKey(ctx, obj, p, updateKey(obj, changed),
		func(p *stripego.PriceParams, key string) error { return updatePrice(ctx, c, obj.Status.ID, key, p) }, c)
	if err != nil {
		return err
	}
	e.inheritDefault(ctx, c, obj, holder, obj.Status.ID)
	return nil
}

func (priceExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Price,
	since time.Time) (string, error) {
	p := &stripego.PriceListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	exclude := append([]string{obj.Status.ID}, obj.Status.PreviousIDs...)
	return findByUID(ctx, c, resPrice, &p.ListParams, string(obj.UID), exclude,
		func() ([]stripeObject, bool, error) {
			it := c.API.Prices.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.PriceList()
			return toStripeObjects(l.Data, func(o *stripego.Price) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Replaced finishes a rollover: the product's default_price moves to the successor if it named the old price, the
// old price is archived, and it is recorded in status.previousIDs.
func (e priceExternal) Replaced(ctx context.Context, c *stripe.Client, obj *billingv1.Price, oldID,
	newID string) error {
	known, isDefault, err := e.knownDefault(ctx, obj, oldID)
	if err != nil {
		return err
	}
	switch {
	case !known:
		err = e.moveDefaultPrice(ctx, c, obj, oldID, newID)
	case isDefault:
		err = e.setDefaultPrice(ctx, c, obj, oldID, newID)
	}
	if err != nil {
		return err
	}
	archive := func() error {
		key := stripe.IdempotencyKey(string(obj.UID), "archive-"+oldID, obj.Generation)
		err := updatePrice(ctx, c, oldID, key, &stripego.PriceParams{Active: stripego.Bool(false)})
		if stripe.IsNotFound(err) {
			return nil
		}
		return err
	}
	err = archive()
	if ce := stripe.Classify(err); ce != nil && ce.Class == stripe.ClassInvalidRequest && known && !isDefault {
		// The Product's status was behind Stripe (the price became its default meanwhile): read, repoint, retry.
		if err = e.moveDefaultPrice(ctx, c, obj, oldID, newID); err == nil {
			err = archive()
		}
	}
	if err != nil {
		return err
	}
	obj.Status.PreviousIDs = withPrevious(obj.Status.PreviousIDs, oldID)
	return nil
}

// moveDefaultPrice points the product's default_price from `from` to `to` ("" unsets it), if it names `from`;
// before, if given, runs first in that case.
func (e priceExternal) moveDefaultPrice(ctx context.Context, c *stripe.Client, obj *billingv1.Price,
	from, to string, before ...func() error) error {
	productID := obj.Status.ProductID
	if productID == "" {
		return nil
	}
	prod, err := getProduct(ctx, c, productID, stripe.PriorityHigh)
	if err != nil {
		if stripe.IsNotFound(err) {
			return nil
		}
		return err
	}
	if prod.DefaultPrice == nil || prod.DefaultPrice.ID != from {
		return nil
	}
	for _, fn := range before {
		if err := fn(); err != nil {
			return err
		}
	}
	return e.setDefaultPrice(ctx, c, obj, from, to)
}

// setDefaultPrice points the product's default_price from `from` to `to` ("" unsets it).
func (e priceExternal) setDefaultPrice(ctx context.Context, c *stripe.Client, obj *billingv1.Price, from,
	to string) error {
	key := stripe.IdempotencyKey(string(obj.UID), "default-price-"+from+"-"+to, obj.Generation)
	return updateProduct(ctx, c, obj.Status.ProductID, key, &stripego.ProductParams{DefaultPrice: stripego.String(to)})
}

// knownDefault reports, from the referenced Product's status (kept current by its reconciles and events), whether
// price is the product's default price, without reading Stripe; known is false when the Price names its product by
// ID or the Product's status is not about that product.
func (e priceExternal) knownDefault(ctx context.Context, obj *billingv1.Price, price string) (known, isDefault bool,
	err error) {
	ref := obj.Spec.ProductRef
	if ref == nil || obj.Status.ProductID == "" {
		return false, false, nil
	}
	prod := &billingv1.Product{}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, prod); err != nil {
		return false, false, client.IgnoreNotFound(err)
	}
	if prod.Status.ID != obj.Status.ProductID || !meta.IsStatusConditionTrue(prod.Status.Conditions,
		billingv1.ConditionReady) {
		return false, false, nil
	}
	return true, prod.Status.DefaultPriceID == price, nil
}

// Delete archives the price (Archive), first unsetting it as its product's default price; Orphan leaves it. A
// default price with a lookup key is first marked (metadataDefaultPriceOf), so that the Price that takes the key
// over (a rename) becomes the default in its place.
func (e priceExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Price) error {
	if obj.Spec.DeletionPolicy == billingv1.Orphan {
		return nil
	}
	if err := e.moveDefaultPrice(ctx, c, obj, obj.Status.ID, "", func() error {
		if obj.Spec.LookupKey == "" {
			return nil
		}
		p := &stripego.PriceParams{}
		p.AddMetadata(metadataDefaultPriceOf, obj.Status.ProductID)
		key := stripe.IdempotencyKey(string(obj.UID), "mark-default", obj.Generation)
		return updatePrice(ctx, c, obj.Status.ID, key, p)
	}); err != nil {
		return err
	}
	key := stripe.IdempotencyKey(string(obj.UID), "archive", obj.Generation)
	return updatePrice(ctx, c, obj.Status.ID, key, &stripego.PriceParams{Active: stripego.Bool(false)})
}
