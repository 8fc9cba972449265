package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CollectionMethod says how Stripe collects payment for the subscription's invoices.
// +kubebuilder:validation:Enum=charge_automatically;send_invoice
type CollectionMethod string

// Collection methods.
const (
	ChargeAutomatically CollectionMethod = "charge_automatically"
	SendInvoice         CollectionMethod = "send_invoice"
)

// PaymentBehavior says what Stripe does when the first payment of a new subscription needs action or fails.
// +kubebuilder:validation:Enum=allow_incomplete;default_incomplete;error_if_incomplete;pending_if_incomplete
type PaymentBehavior string

// Payment behaviours.
const (
	AllowIncomplete     PaymentBehavior = "allow_incomplete"
	DefaultIncomplete   PaymentBehavior = "default_incomplete"
	ErrorIfIncomplete   PaymentBehavior = "error_if_incomplete"
	PendingIfIncomplete PaymentBehavior = "pending_if_incomplete"
)

// ProrationBehavior says how Stripe prorates a change of items or quantities.
// +kubebuilder:validation:Enum=create_prorations;none;always_invoice
type ProrationBehavior string

// Proration behaviours.
const (
	CreateProrations ProrationBehavior = "create_prorations"
	ProrationNone    ProrationBehavior = "none"
	AlwaysInvoice    ProrationBehavior = "always_invoice"
)

// PriceChangePolicy says what a subscription does when a Price it references rolls to a successor.
// +kubebuilder:validation:Enum=Keep;Migrate
type PriceChangePolicy string

const (
	// PriceChangeKeep leaves existing items on the price they were signed up with (the default, as Stripe behaves).
	PriceChangeKeep PriceChangePolicy = "Keep"
	// PriceChangeMigrate moves existing items to the successor price, prorated per prorationBehavior.
	PriceChangeMigrate PriceChangePolicy = "Migrate"
)

// ChangesInStripe says what the operator does when the subscription is changed in Stripe by someone else (the
// customer in the customer portal, support in the Dashboard, another program).
// +kubebuilder:validation:Enum=Restore;Follow
type ChangesInStripe string

const (
	// ChangesRestore undoes a change made in Stripe within seconds of its event: the spec is the truth (the default,
	// as GitOps expects).
	ChangesRestore ChangesInStripe = "Restore"
	// ChangesFollow lets items, quantities, cancelAtPeriodEnd and the discount changed in Stripe stand; the SpecDiverged condition
	// says the spec no longer describes the subscription, and a later edit of those spec fields is applied.
	ChangesFollow ChangesInStripe = "Follow"
)

// SubscriptionDeletionPolicy says what happens to the Stripe subscription when the Subscription is deleted.
// +kubebuilder:validation:Enum=Cancel;CancelAtPeriodEnd;Orphan
type SubscriptionDeletionPolicy string

const (
	// SubscriptionCancel cancels the Stripe subscription immediately (the default).
	SubscriptionCancel SubscriptionDeletionPolicy = "Cancel"
	// SubscriptionCancelAtPeriodEnd lets the current period run out, then Stripe ends the subscription.
	SubscriptionCancelAtPeriodEnd SubscriptionDeletionPolicy = "CancelAtPeriodEnd"
	// SubscriptionOrphan leaves the Stripe subscription running.
	SubscriptionOrphan SubscriptionDeletionPolicy = "Orphan"
)

// TaxRateReference names a tax rate: a TaxRate in this namespace, or a Stripe tax rate by ID.
//
// +kubebuilder:validation:XValidation:rule="has(self.taxRateRef) != has(self.taxRateID)",message="each tax rate needs exactly one of taxRateRef or taxRateID"
type TaxRateReference struct {
	// taxRateRef names a TaxRate in this namespace. When it rolls to a successor (its percentage or inclusive
	// changed), the subscription moves to the successor from its next invoice.
	// +optional
	TaxRateRef *LocalObjectReference `json:"taxRateRef,omitempty"`

	// taxRateID is the Stripe ID of a tax rate not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^txr_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	TaxRateID string `json:"taxRateID,omitempty"`
}

// SubscriptionItem is one price on the subscription.
//
// +kubebuilder:validation:XValidation:rule="has(self.priceRef) != has(self.priceID)",message="each item needs exactly one of priceRef or priceID"
type SubscriptionItem struct {
	// priceRef names a Price in this namespace.
	// +optional
	PriceRef *LocalObjectReference `json:"priceRef,omitempty"`

	// priceID is the Stripe ID of a price not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^price_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	PriceID string `json:"priceID,omitempty"`

	// quantity of the price (default 1); leave it unset for metered prices.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=999999999
	Quantity *int64 `json:"quantity,omitempty"`

	// taxRates apply to this item instead of the subscription's defaultTaxRates (at most 5, each once).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, has(x.taxRateRef) ? (has(y.taxRateRef) && y.taxRateRef.name == x.taxRateRef.name) : (has(y.taxRateID) && y.taxRateID == x.taxRateID)))",message="each tax rate may appear only once in taxRates"
	TaxRates []TaxRateReference `json:"taxRates,omitempty"`
}

// SubscriptionAdopt names an existing Stripe subscription to take over instead of creating one.
type SubscriptionAdopt struct {
	// id of the Stripe subscription to adopt.
	// +required
	// +kubebuilder:validation:Pattern=`^sub_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// SubscriptionSpec is the desired Stripe subscription.
//
// +kubebuilder:validation:XValidation:rule="has(self.customerRef) != has(self.customerID)",message="exactly one of customerRef or customerID is required"
// +kubebuilder:validation:XValidation:rule="has(self.customerRef) == has(oldSelf.customerRef) && (!has(self.customerRef) || self.customerRef == oldSelf.customerRef) && (!has(self.customerID) || self.customerID == oldSelf.customerID)",message="the subscription's customer is immutable: Stripe cannot move a subscription to another customer"
// +kubebuilder:validation:XValidation:rule="!has(self.daysUntilDue) || self.collectionMethod == 'send_invoice'",message="daysUntilDue is only valid with collectionMethod send_invoice"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type SubscriptionSpec struct {
	Management `json:",inline"`

	// customerRef names the Customer in this namespace that pays for the subscription (immutable).
	// +optional
	CustomerRef *LocalObjectReference `json:"customerRef,omitempty"`

	// customerID is the Stripe ID of a customer not managed in this cluster (immutable).
	// +optional
	// +kubebuilder:validation:Pattern=`^cus_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	CustomerID string `json:"customerID,omitempty"`

	// items are the prices the subscription bills, 1 to 20, each price at most once.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, has(x.priceRef) ? (has(y.priceRef) && y.priceRef.name == x.priceRef.name) : (has(y.priceID) && y.priceID == x.priceID)))",message="each price may appear only once in items"
	Items []SubscriptionItem `json:"items"`

	// trialPeriodDays gives a new subscription a free trial of this many days (applied at creation only).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=730
	TrialPeriodDays *int64 `json:"trialPeriodDays,omitempty"`

	// collectionMethod is charge_automatically (default: charge the default payment method) or send_invoice.
	// +optional
	// +kubebuilder:default=charge_automatically
	CollectionMethod CollectionMethod `json:"collectionMethod,omitempty"`

	// daysUntilDue is the number of days a customer has to pay an invoice; only with collectionMethod send_invoice.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=730
	DaysUntilDue *int64 `json:"daysUntilDue,omitempty"`

	// paymentBehavior says what happens when the first payment needs action or fails (applied at creation only):
	// allow_incomplete (default), default_incomplete, error_if_incomplete or pending_if_incomplete.
	// +optional
	// +kubebuilder:default=allow_incomplete
	PaymentBehavior PaymentBehavior `json:"paymentBehavior,omitempty"`

	// defaultPaymentMethod overrides the customer's default payment method for this subscription. It is attached to
	// the subscription's customer first (a test token such as pm_card_visa becomes a new pm_ object), which
	// status.defaultPaymentMethod records.
	// +optional
	// +kubebuilder:validation:Pattern=`^pm_[A-Za-z0-9_]+$`
	// +kubebuilder:validation:MaxLength=255
	DefaultPaymentMethod string `json:"defaultPaymentMethod,omitempty"`

	// cancelAtPeriodEnd ends the subscription when the current period runs out.
	// +optional
	CancelAtPeriodEnd bool `json:"cancelAtPeriodEnd,omitempty"`

	// prorationBehavior applies to changes of items and quantities: create_prorations (default), none or always_invoice.
	// +optional
	// +kubebuilder:default=create_prorations
	ProrationBehavior ProrationBehavior `json:"prorationBehavior,omitempty"`

	// priceChangePolicy says what happens when a referenced Price rolls to a successor: Keep (default) leaves existing
	// items on the old price; Migrate moves them to the new one.
	// +optional
	// +kubebuilder:default=Keep
	PriceChangePolicy PriceChangePolicy `json:"priceChangePolicy,omitempty"`

	// changesInStripe says who wins when the subscription is changed in Stripe outside the operator: Restore (default;
	// the change is undone within seconds, with a DriftDetected Event) or Follow (items, quantities,
	// cancelAtPeriodEnd and the discount changed in Stripe stand; SpecDiverged says so; a later edit of those spec
	// fields is applied).
	// +optional
	// +kubebuilder:default=Restore
	ChangesInStripe ChangesInStripe `json:"changesInStripe,omitempty"`

	// defaultTaxRates apply to every item without taxRates of its own (at most 5, each once). Changes take effect
	// from the next invoice.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, has(x.taxRateRef) ? (has(y.taxRateRef) && y.taxRateRef.name == x.taxRateRef.name) : (has(y.taxRateID) && y.taxRateID == x.taxRateID)))",message="each tax rate may appear only once in defaultTaxRates"
	DefaultTaxRates []TaxRateReference `json:"defaultTaxRates,omitempty"`

	// metadata is copied to the Stripe subscription, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Cancel (default, immediately),
	// CancelAtPeriodEnd or Orphan.
	// +optional
	// +kubebuilder:default=Cancel
	DeletionPolicy SubscriptionDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe subscription instead of creating one.
	// +optional
	Adopt *SubscriptionAdopt `json:"adopt,omitempty"`

	// discount applies a coupon or a promotion code to the subscription. It may be added, changed or removed on a
	// live subscription; a discount that ended in Stripe (a once or repeating coupon that ran out) is not applied
	// again.
	// +optional
	Discount *SubscriptionDiscount `json:"discount,omitempty"`
}

// SubscriptionDiscount names the coupon or promotion code a subscription is discounted by.
//
// +kubebuilder:validation:XValidation:rule="[has(self.couponRef), has(self.couponID), has(self.promotionCodeRef), has(self.promotionCodeID)].filter(x, x).size() == 1",message="discount needs exactly one of couponRef, couponID, promotionCodeRef or promotionCodeID"
type SubscriptionDiscount struct {
	// couponRef names a Coupon in this namespace.
	// +optional
	CouponRef *LocalObjectReference `json:"couponRef,omitempty"`

	// couponID is the Stripe ID of a coupon not managed in this cluster.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CouponID string `json:"couponID,omitempty"`

	// promotionCodeRef names a PromotionCode in this namespace; Stripe checks its restrictions and counts the
	// redemption.
	// +optional
	PromotionCodeRef *LocalObjectReference `json:"promotionCodeRef,omitempty"`

	// promotionCodeID is the Stripe ID of a promotion code not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^promo_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	PromotionCodeID string `json:"promotionCodeID,omitempty"`
}

// SubscriptionItemStatus is one item of the Stripe subscription.
type SubscriptionItemStatus struct {
	// id of the subscription item (si_...).
	// +required
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
	// priceID the item bills.
	// +required
	// +kubebuilder:validation:MaxLength=255
	PriceID string `json:"priceID"`
	// quantity of the item.
	// +optional
	Quantity int64 `json:"quantity,omitempty"`
	// taxRateIDs are the item's own tax rates in Stripe.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	TaxRateIDs []string `json:"taxRateIDs,omitempty"`
}

// InvoiceSummary summarises the subscription's latest invoice.
type InvoiceSummary struct {
	// id of the invoice (in_...).
	// +required
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
	// status of the invoice: draft, open, paid, uncollectible or void.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Status string `json:"status,omitempty"`
	// amountDue in the currency's minor unit.
	// +optional
	AmountDue int64 `json:"amountDue,omitempty"`
	// currency of the invoice.
	// +optional
	// +kubebuilder:validation:MaxLength=3
	Currency string `json:"currency,omitempty"`
	// hostedInvoiceURL is where the customer can see and pay the invoice.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	HostedInvoiceURL string `json:"hostedInvoiceURL,omitempty"`
	// subtotal is the sum of the invoice's lines before discounts and taxes, in minor units.
	// +optional
	Subtotal int64 `json:"subtotal,omitempty"`
	// discountAmount is what discounts took off the subtotal (Stripe's total_discount_amounts), in minor units.
	// +optional
	DiscountAmount int64 `json:"discountAmount,omitempty"`
	// total is the invoice's total after discounts and taxes, in minor units.
	// +optional
	Total int64 `json:"total,omitempty"`
	// tax is the invoice's tax in the currency's minor unit, inclusive and exclusive (absent without tax rates).
	// +optional
	Tax *int64 `json:"tax,omitempty"`
}

// DiscountStatus is the discount Stripe applies to a subscription.
type DiscountStatus struct {
	// couponID is the coupon the discount comes from.
	// +required
	// +kubebuilder:validation:MaxLength=255
	CouponID string `json:"couponID"`
	// promotionCodeID is the promotion code that was redeemed for it, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	PromotionCodeID string `json:"promotionCodeID,omitempty"`
	// percentOff is the coupon's percent off, as a decimal string ("20", "12.5").
	// +optional
	// +kubebuilder:validation:MaxLength=16
	PercentOff string `json:"percentOff,omitempty"`
	// amountOff is the coupon's amount off, in minor units of currency.
	// +optional
	AmountOff int64 `json:"amountOff,omitempty"`
	// currency of amountOff.
	// +optional
	// +kubebuilder:validation:MaxLength=3
	Currency string `json:"currency,omitempty"`
	// duration is the coupon's duration: once, repeating or forever.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Duration string `json:"duration,omitempty"`
	// start is when the discount was applied.
	// +optional
	Start *metav1.Time `json:"start,omitempty"`
	// end is when a repeating discount ends; none for once and forever.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
	// ended says Stripe removed the discount because it ran out (a once coupon after its invoice, a repeating one
	// after its months): the operator does not apply it again.
	// +optional
	Ended bool `json:"ended,omitempty"`
	// applied names what spec.discount resolved to when the operator applied it ("coupon:<id>" or
	// "promotion_code:<id>").
	// +optional
	// +kubebuilder:validation:MaxLength=300
	Applied string `json:"applied,omitempty"`
}

// DriftRestore records when the operator last restored a group of spec fields over a change made in Stripe.
type DriftRestore struct {
	// field is the group of spec fields: items, cancelAtPeriodEnd, metadata, collectionMethod, daysUntilDue,
	// defaultPaymentMethod or discount.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Field string `json:"field"`
	// restoredAt is when the operator last restored it.
	// +required
	RestoredAt metav1.Time `json:"restoredAt"`
	// loop is true when it was changed in Stripe again within the drift-loop window of a restore: the operator stopped
	// restoring it (Stalled, reason DriftLoop) until the spec changes.
	// +optional
	Loop bool `json:"loop,omitempty"`
}

// SubscriptionStatus is what Stripe holds for the subscription.
type SubscriptionStatus struct {
	StripeStatus `json:",inline"`

	// customerID is the Stripe customer the subscription belongs to.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	CustomerID string `json:"customerID,omitempty"`

	// stripeStatus is Stripe's status: trialing, active, incomplete, incomplete_expired, past_due, unpaid, canceled or paused.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	StripeState string `json:"stripeStatus,omitempty"`

	// currentPeriodStart is the start of the period that has been invoiced.
	// +optional
	CurrentPeriodStart *metav1.Time `json:"currentPeriodStart,omitempty"`

	// currentPeriodEnd is the end of that period; the next invoice comes then.
	// +optional
	CurrentPeriodEnd *metav1.Time `json:"currentPeriodEnd,omitempty"`

	// cancelAtPeriodEnd is Stripe's flag: the subscription ends at currentPeriodEnd.
	// +optional
	CancelAtPeriodEnd bool `json:"cancelAtPeriodEnd,omitempty"`

	// defaultTaxRateIDs are the subscription's default tax rates in Stripe.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	DefaultTaxRateIDs []string `json:"defaultTaxRateIDs,omitempty"`

	// items are the subscription's items in Stripe.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Items []SubscriptionItemStatus `json:"items,omitempty"`

	// latestInvoice summarises the most recent invoice.
	// +optional
	LatestInvoice *InvoiceSummary `json:"latestInvoice,omitempty"`

	// defaultPaymentMethod is the payment method spec.defaultPaymentMethod was attached to the subscription's
	// customer as, and which is the subscription's default.
	// +optional
	DefaultPaymentMethod *AttachedPaymentMethod `json:"defaultPaymentMethod,omitempty"`

	// appliedSpec records, per group of spec fields, a fingerprint of the spec last applied to Stripe (or found
	// equal there). A group whose spec still has that fingerprint but differs in Stripe was changed in Stripe; one
	// whose fingerprint moved was edited in the spec.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	AppliedSpec map[string]string `json:"appliedSpec,omitempty"`

	// driftRestores are the groups of spec fields the operator restored over changes made in Stripe (Restore), with
	// when.
	// +optional
	// +listType=map
	// +listMapKey=field
	// +kubebuilder:validation:MaxItems=16
	DriftRestores []DriftRestore `json:"driftRestores,omitempty"`

	// discount is the discount Stripe applies to the subscription (coupon, percent or amount off, end).
	// +optional
	Discount *DiscountStatus `json:"discount,omitempty"`
}

// Subscription is a Stripe subscription of a customer to one or more prices.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ssub,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Stripe Status",type=string,JSONPath=`.status.stripeStatus`
// +kubebuilder:printcolumn:name="Period End",type=string,JSONPath=`.status.currentPeriodEnd`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Subscription struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe subscription.
	// +required
	Spec SubscriptionSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status SubscriptionStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Subscription) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (s *Subscription) GetStripeStatus() *StripeStatus { return &s.Status.StripeStatus }

// SubscriptionList is a list of Subscriptions.
//
// +kubebuilder:object:root=true
type SubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Subscription `json:"items"`
}
