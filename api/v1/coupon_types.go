package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CouponDuration says how long a discount made from the coupon lasts.
// +kubebuilder:validation:Enum=once;repeating;forever
type CouponDuration string

// Coupon durations.
const (
	// CouponOnce discounts one invoice.
	CouponOnce CouponDuration = "once"
	// CouponRepeating discounts every invoice for durationInMonths months.
	CouponRepeating CouponDuration = "repeating"
	// CouponForever discounts every invoice.
	CouponForever CouponDuration = "forever"
)

// DeleteDeletionPolicy says what happens to a Stripe coupon when its object is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeleteDeletionPolicy string

const (
	// Delete deletes the Stripe object. For a coupon, discounts already applied keep working; it can no longer be
	// redeemed.
	Delete DeleteDeletionPolicy = "Delete"
	// OrphanObject leaves the Stripe object as it is.
	OrphanObject DeleteDeletionPolicy = "Orphan"
)

// ProductReference names a product: a Product in this namespace, or a Stripe product ID.
//
// +kubebuilder:validation:XValidation:rule="has(self.productRef) != has(self.productID)",message="each product needs exactly one of productRef or productID"
type ProductReference struct {
	// productRef names a Product in this namespace.
	// +optional
	ProductRef *LocalObjectReference `json:"productRef,omitempty"`

	// productID is the Stripe ID of a product not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^prod_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ProductID string `json:"productID,omitempty"`
}

// CouponAppliesTo limits the coupon to some products.
type CouponAppliesTo struct {
	// products the coupon applies to (1 to 100); invoice lines of other products are not discounted.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Products []ProductReference `json:"products"`
}

// CouponAdopt names an existing Stripe coupon to take over instead of creating one.
type CouponAdopt struct {
	// id of the Stripe coupon to adopt.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// CouponSpec is the desired Stripe coupon. Stripe lets only name and metadata change after creation: every other
// field is immutable here too, so a new offer is a new Coupon.
//
// +kubebuilder:validation:XValidation:rule="has(self.percentOff) != has(self.amountOff)",message="exactly one of percentOff or amountOff is required"
// +kubebuilder:validation:XValidation:rule="has(self.amountOff) == has(self.currency)",message="currency is required with amountOff, and only with it"
// +kubebuilder:validation:XValidation:rule="(self.duration == 'repeating') == has(self.durationInMonths)",message="durationInMonths is required with duration repeating, and only with it"
// +kubebuilder:validation:XValidation:rule="has(self.id) == has(oldSelf.id) && (!has(self.id) || self.id == oldSelf.id)",message="id is immutable: Stripe cannot rename a coupon"
// +kubebuilder:validation:XValidation:rule="has(self.percentOff) == has(oldSelf.percentOff) && (!has(self.percentOff) || self.percentOff == oldSelf.percentOff)",message="percentOff is immutable: Stripe cannot change a coupon's discount; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.amountOff) == has(oldSelf.amountOff) && (!has(self.amountOff) || self.amountOff == oldSelf.amountOff)",message="amountOff is immutable: Stripe cannot change a coupon's discount; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.currency) == has(oldSelf.currency) && (!has(self.currency) || self.currency == oldSelf.currency)",message="currency is immutable: Stripe cannot change a coupon's discount; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="self.duration == oldSelf.duration",message="duration is immutable: Stripe cannot change a coupon's duration; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.durationInMonths) == has(oldSelf.durationInMonths) && (!has(self.durationInMonths) || self.durationInMonths == oldSelf.durationInMonths)",message="durationInMonths is immutable: Stripe cannot change a coupon's duration; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.maxRedemptions) == has(oldSelf.maxRedemptions) && (!has(self.maxRedemptions) || self.maxRedemptions == oldSelf.maxRedemptions)",message="maxRedemptions is immutable: Stripe cannot change a coupon's redemption limit; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.redeemBy) == has(oldSelf.redeemBy) && (!has(self.redeemBy) || self.redeemBy == oldSelf.redeemBy)",message="redeemBy is immutable: Stripe cannot change a coupon's last redemption date; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="has(self.appliesTo) == has(oldSelf.appliesTo) && (!has(self.appliesTo) || self.appliesTo == oldSelf.appliesTo)",message="appliesTo is immutable: Stripe cannot change the products a coupon applies to; create a new Coupon"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type CouponSpec struct {
	Management `json:",inline"`

	// id is the coupon's Stripe ID, the code a person can type (for example PARTNER20); Stripe generates one when
	// it is not set. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	ID string `json:"id,omitempty"`

	// name is shown to customers on invoices and receipts (at most 40 characters). It may change.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name,omitempty"`

	// percentOff is the discount in percent, above 0 and at most 100, with up to two decimals: 20, or "12.5" as a
	// string. Immutable.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 100) : (self.matches('^[0-9]{1,3}([.][0-9]{1,2})?$') && double(self) > 0.0 && double(self) <= 100.0)",message="percentOff must be above 0 and at most 100, with at most two decimals"
	PercentOff *intstr.IntOrString `json:"percentOff,omitempty"`

	// amountOff is the discount in the currency's minor unit (cents for usd), at least 1. Immutable.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99999999
	AmountOff *int64 `json:"amountOff,omitempty"`

	// currency of amountOff, a lowercase three-letter ISO 4217 code. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{3}$')",message="currency must be a lowercase three-letter ISO code such as usd"
	Currency string `json:"currency,omitempty"`

	// duration is once (default: one invoice), repeating (durationInMonths months) or forever. Immutable.
	// +optional
	// +kubebuilder:default=once
	Duration CouponDuration `json:"duration,omitempty"`

	// durationInMonths is how many months a repeating discount lasts. Immutable.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=36
	DurationInMonths *int64 `json:"durationInMonths,omitempty"`

	// maxRedemptions is how many times the coupon may be redeemed in all. Immutable.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRedemptions *int64 `json:"maxRedemptions,omitempty"`

	// redeemBy is the last time the coupon may be redeemed. Immutable.
	// +optional
	RedeemBy *metav1.Time `json:"redeemBy,omitempty"`

	// appliesTo limits the coupon to some products. Immutable.
	// +optional
	AppliesTo *CouponAppliesTo `json:"appliesTo,omitempty"`

	// metadata is copied to the Stripe coupon, next to the operator's k8s_ stamp. It may change.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Delete (default: the coupon can no
	// longer be redeemed; discounts already applied keep working) or Orphan.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeleteDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe coupon instead of creating one. Its immutable fields must match the spec.
	// +optional
	Adopt *CouponAdopt `json:"adopt,omitempty"`
}

// CouponStatus is what Stripe holds for the coupon.
type CouponStatus struct {
	StripeStatus `json:",inline"`

	// timesRedeemed is how many times the coupon has been redeemed, as of the last read.
	// +optional
	TimesRedeemed int64 `json:"timesRedeemed,omitempty"`

	// valid says whether the coupon can still be redeemed (not past redeemBy, not used up).
	// +optional
	Valid *bool `json:"valid,omitempty"`

	// productIDs are the Stripe products appliesTo resolved to.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	ProductIDs []string `json:"productIDs,omitempty"`
}

// Coupon is a Stripe coupon: a percent or amount off, for once, some months or forever.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scoupon,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Percent Off",type=string,JSONPath=`.spec.percentOff`
// +kubebuilder:printcolumn:name="Amount Off",type=integer,JSONPath=`.spec.amountOff`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.spec.duration`
// +kubebuilder:printcolumn:name="Redeemed",type=integer,JSONPath=`.status.timesRedeemed`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Coupon struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe coupon.
	// +required
	Spec CouponSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status CouponStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Coupon) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (c *Coupon) GetStripeStatus() *StripeStatus { return &c.Status.StripeStatus }

// CouponList is a list of Coupons.
//
// +kubebuilder:object:root=true
type CouponList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Coupon `json:"items"`
}
