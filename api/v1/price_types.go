package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RecurringInterval is the billing frequency of a recurring price.
// +kubebuilder:validation:Enum=day;week;month;year
type RecurringInterval string

// Recurring intervals.
const (
	IntervalDay   RecurringInterval = "day"
	IntervalWeek  RecurringInterval = "week"
	IntervalMonth RecurringInterval = "month"
	IntervalYear  RecurringInterval = "year"
)

// UsageType says how the quantity of a recurring price is determined.
// +kubebuilder:validation:Enum=licensed;metered
type UsageType string

// Usage types.
const (
	UsageLicensed UsageType = "licensed"
	UsageMetered  UsageType = "metered"
)

// TaxBehavior says whether a price includes tax.
// +kubebuilder:validation:Enum=inclusive;exclusive;unspecified
type TaxBehavior string

// Tax behaviours.
const (
	TaxInclusive   TaxBehavior = "inclusive"
	TaxExclusive   TaxBehavior = "exclusive"
	TaxUnspecified TaxBehavior = "unspecified"
)

// Recurring makes a price bill on a schedule. Stripe allows at most one year between two bills.
//
// +kubebuilder:validation:XValidation:rule="(self.interval == 'day' && self.intervalCount <= 365) || (self.interval == 'week' && self.intervalCount <= 52) || (self.interval == 'month' && self.intervalCount <= 12) || (self.interval == 'year' && self.intervalCount == 1)",message="recurring.intervalCount must make at most one year between bills (365 days, 52 weeks, 12 months or 1 year)"
// +kubebuilder:validation:XValidation:rule="!(has(self.meterRef) && has(self.meterID))",message="recurring needs at most one of meterRef or meterID"
// +kubebuilder:validation:XValidation:rule="(has(self.usageType) && self.usageType == 'metered') == (has(self.meterRef) || has(self.meterID))",message="a metered price needs meterRef or meterID (the Meter its usage is reported to), and only a metered price takes one"
type Recurring struct {
	// interval is the billing frequency: day, week, month or year.
	// +required
	Interval RecurringInterval `json:"interval"`

	// intervalCount is the number of intervals between bills (default 1).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=365
	IntervalCount int64 `json:"intervalCount,omitempty"`

	// usageType is licensed (default: billed for the subscription quantity, in advance) or metered (billed in arrears
	// for the usage its Meter recorded over the period; needs meterRef or meterID). Changing it rolls the price.
	// +optional
	// +kubebuilder:default=licensed
	UsageType UsageType `json:"usageType,omitempty"`

	// meterRef names the Meter in this namespace whose usage a metered price bills. Changing it rolls the price.
	// +optional
	MeterRef *LocalObjectReference `json:"meterRef,omitempty"`

	// meterID is the Stripe ID of a billing meter not managed in this cluster. Changing it rolls the price.
	// +optional
	// +kubebuilder:validation:Pattern=`^mtr_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	MeterID string `json:"meterID,omitempty"`
}

// PriceAdopt names an existing Stripe price to take over, by ID or by lookup key.
//
// +kubebuilder:validation:XValidation:rule="has(self.id) != has(self.lookupKey)",message="adopt needs exactly one of id or lookupKey"
type PriceAdopt struct {
	// id of the Stripe price to adopt.
	// +optional
	// +kubebuilder:validation:Pattern=`^price_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id,omitempty"`

	// lookupKey of the Stripe price to adopt.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	LookupKey string `json:"lookupKey,omitempty"`
}

// PriceSpec is the desired Stripe price. Stripe prices are immutable in their amount, currency, recurrence and
// product: changing one of those here rolls the price (a successor is created, the lookup key moves to it, the old
// one is archived and listed in status.previousIDs). Subscriptions decide with their priceChangePolicy whether they
// follow.
//
// +kubebuilder:validation:XValidation:rule="has(self.productRef) != has(self.productID)",message="exactly one of productRef or productID is required"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.taxBehavior) || oldSelf.taxBehavior == 'unspecified' || (has(self.taxBehavior) && self.taxBehavior == oldSelf.taxBehavior)",message="taxBehavior cannot change once it is inclusive or exclusive"
type PriceSpec struct {
	Management `json:",inline"`

	// productRef names the Product in this namespace that the price belongs to.
	// +optional
	ProductRef *LocalObjectReference `json:"productRef,omitempty"`

	// productID is the Stripe ID of a product not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^prod_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ProductID string `json:"productID,omitempty"`

	// currency is a lowercase three-letter ISO 4217 code, for example usd or eur.
	// +required
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{3}$')",message="currency must be a lowercase three-letter ISO code such as usd"
	Currency string `json:"currency"`

	// unitAmount is the price in the currency's minor unit (cents for usd), 0 or more.
	// +required
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="unitAmount must be 0 or more (in the currency's minor unit, e.g. cents)"
	// +kubebuilder:validation:XValidation:rule="self <= 99999999",message="unitAmount must be at most 99999999 (Stripe's limit, in minor units)"
	UnitAmount int64 `json:"unitAmount"`

	// recurring makes the price bill on a schedule; without it the price is one-time.
	// +optional
	Recurring *Recurring `json:"recurring,omitempty"`

	// lookupKey identifies the price across rollovers; unique per Stripe account.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	LookupKey string `json:"lookupKey,omitempty"`

	// transferLookupKey takes lookupKey from any other Stripe price that holds it (Stripe's transfer_lookup_key).
	// Without it the key is taken only from a price that is archived, or that this operator created for an object
	// that no longer exists or no longer claims the key (its k8s_ metadata stamp says which); otherwise the Price is
	// Stalled, naming the holder.
	// +optional
	TransferLookupKey bool `json:"transferLookupKey,omitempty"`

	// nickname is a brief description of the price, hidden from customers.
	// +optional
	// +kubebuilder:validation:MaxLength=250
	Nickname string `json:"nickname,omitempty"`

	// taxBehavior is inclusive, exclusive or unspecified; once inclusive or exclusive it cannot change.
	// +optional
	TaxBehavior TaxBehavior `json:"taxBehavior,omitempty"`

	// active says whether new purchases may use the price (default true).
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// metadata is copied to the Stripe price, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Archive (default) or Orphan.
	// +optional
	// +kubebuilder:default=Archive
	DeletionPolicy ArchiveDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe price, by ID or lookup key, instead of creating one.
	// +optional
	Adopt *PriceAdopt `json:"adopt,omitempty"`
}

// PriceStatus is what Stripe holds for the price.
type PriceStatus struct {
	StripeStatus `json:",inline"`

	// productID is the Stripe product the current price belongs to.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ProductID string `json:"productID,omitempty"`

	// meterID is the Stripe billing meter a metered price bills.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	MeterID string `json:"meterID,omitempty"`

	// previousIDs are the Stripe prices this object rolled away from, oldest first. They are archived in Stripe;
	// subscriptions with priceChangePolicy Keep may still bill on them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	PreviousIDs []string `json:"previousIDs,omitempty"`
}

// Price is a Stripe price.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=prices,singular=price,shortName=sprice,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Amount",type=integer,JSONPath=`.spec.unitAmount`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.spec.currency`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.recurring.interval`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Price struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe price.
	// +required
	Spec PriceSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status PriceStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Price) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (p *Price) GetStripeStatus() *StripeStatus { return &p.Status.StripeStatus }

// PriceList is a list of Prices.
//
// +kubebuilder:object:root=true
type PriceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Price `json:"items"`
}
