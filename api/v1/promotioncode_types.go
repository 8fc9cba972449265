package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PromotionCodeDeletionPolicy says what happens to a Stripe promotion code when its object is deleted. Stripe
// cannot delete a promotion code, so it is deactivated.
// +kubebuilder:validation:Enum=Deactivate;Orphan
type PromotionCodeDeletionPolicy string

const (
	// Deactivate sets active=false in Stripe (the default): the code can no longer be redeemed.
	Deactivate PromotionCodeDeletionPolicy = "Deactivate"
	// PromotionCodeOrphan leaves the Stripe promotion code as it is.
	PromotionCodeOrphan PromotionCodeDeletionPolicy = "Orphan"
)

// PromotionCodeRestrictions limit who may redeem the code.
//
// +kubebuilder:validation:XValidation:rule="has(self.minimumAmount) == has(self.minimumAmountCurrency)",message="minimumAmount and minimumAmountCurrency go together"
type PromotionCodeRestrictions struct {
	// firstTimeTransaction limits the code to customers who have never paid.
	// +optional
	FirstTimeTransaction bool `json:"firstTimeTransaction,omitempty"`

	// minimumAmount is the smallest invoice subtotal, in minor units, the code applies to.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99999999
	MinimumAmount *int64 `json:"minimumAmount,omitempty"`

	// minimumAmountCurrency is the currency of minimumAmount.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{3}$')",message="minimumAmountCurrency must be a lowercase three-letter ISO code such as usd"
	MinimumAmountCurrency string `json:"minimumAmountCurrency,omitempty"`
}

// PromotionCodeAdopt names an existing Stripe promotion code to take over instead of creating one.
type PromotionCodeAdopt struct {
	// id of the Stripe promotion code to adopt.
	// +required
	// +kubebuilder:validation:Pattern=`^promo_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// PromotionCodeSpec is the desired Stripe promotion code: a customer-facing code for a coupon. Stripe lets only
// active and metadata change: the other fields are immutable here too.
//
// +kubebuilder:validation:XValidation:rule="has(self.couponRef) != has(self.couponID)",message="exactly one of couponRef or couponID is required"
// +kubebuilder:validation:XValidation:rule="!(has(self.customerRef) && has(self.customerID))",message="at most one of customerRef or customerID may be set"
// +kubebuilder:validation:XValidation:rule="has(self.couponRef) == has(oldSelf.couponRef) && (!has(self.couponRef) || self.couponRef == oldSelf.couponRef) && (!has(self.couponID) || self.couponID == oldSelf.couponID)",message="the coupon is immutable: Stripe cannot move a promotion code to another coupon; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="self.code == oldSelf.code",message="code is immutable: Stripe cannot change a promotion code's code; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="has(self.customerRef) == has(oldSelf.customerRef) && (!has(self.customerRef) || self.customerRef == oldSelf.customerRef) && has(self.customerID) == has(oldSelf.customerID) && (!has(self.customerID) || self.customerID == oldSelf.customerID)",message="the customer is immutable: Stripe cannot change whom a promotion code is limited to; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="has(self.maxRedemptions) == has(oldSelf.maxRedemptions) && (!has(self.maxRedemptions) || self.maxRedemptions == oldSelf.maxRedemptions)",message="maxRedemptions is immutable: Stripe cannot change a promotion code's redemption limit; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="has(self.expiresAt) == has(oldSelf.expiresAt) && (!has(self.expiresAt) || self.expiresAt == oldSelf.expiresAt)",message="expiresAt is immutable: Stripe cannot change when a promotion code expires; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="has(self.restrictions) == has(oldSelf.restrictions) && (!has(self.restrictions) || self.restrictions == oldSelf.restrictions)",message="restrictions are immutable: Stripe cannot change a promotion code's restrictions; create a new PromotionCode"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type PromotionCodeSpec struct {
	Management `json:",inline"`

	// couponRef names the Coupon in this namespace the code redeems. Immutable.
	// +optional
	CouponRef *LocalObjectReference `json:"couponRef,omitempty"`

	// couponID is the Stripe ID of a coupon not managed in this cluster. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CouponID string `json:"couponID,omitempty"`

	// code is what customers type, letters and digits; Stripe compares it regardless of case, and only one active
	// promotion code in the account may have it. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]+$`
	Code string `json:"code"`

	// active says whether the code can be redeemed (default true). It may change.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// maxRedemptions is how many times the code may be redeemed in all. Immutable.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRedemptions *int64 `json:"maxRedemptions,omitempty"`

	// expiresAt is when the code stops being redeemable. Immutable.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// customerRef limits the code to one Customer in this namespace. Immutable.
	// +optional
	CustomerRef *LocalObjectReference `json:"customerRef,omitempty"`

	// customerID limits the code to one Stripe customer not managed in this cluster. Immutable.
	// +optional
	// +kubebuilder:validation:Pattern=`^cus_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	CustomerID string `json:"customerID,omitempty"`

	// restrictions limit who may redeem the code. Immutable.
	// +optional
	Restrictions *PromotionCodeRestrictions `json:"restrictions,omitempty"`

	// metadata is copied to the Stripe promotion code, next to the operator's k8s_ stamp. It may change.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Deactivate (default; Stripe cannot
	// delete a promotion code) or Orphan.
	// +optional
	// +kubebuilder:default=Deactivate
	DeletionPolicy PromotionCodeDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe promotion code instead of creating one. Its immutable fields must match
	// the spec.
	// +optional
	Adopt *PromotionCodeAdopt `json:"adopt,omitempty"`
}

// PromotionCodeStatus is what Stripe holds for the promotion code.
type PromotionCodeStatus struct {
	StripeStatus `json:",inline"`

	// couponID is the Stripe coupon the code redeems.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	CouponID string `json:"couponID,omitempty"`

	// active is whether Stripe lets the code be redeemed.
	// +optional
	Active *bool `json:"active,omitempty"`

	// timesRedeemed is how many times the code has been redeemed, as of the last read.
	// +optional
	TimesRedeemed int64 `json:"timesRedeemed,omitempty"`
}

// PromotionCode is a Stripe promotion code: a customer-facing code for a coupon.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spromo,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Code",type=string,JSONPath=`.spec.code`
// +kubebuilder:printcolumn:name="Coupon",type=string,JSONPath=`.status.couponID`
// +kubebuilder:printcolumn:name="Redeemed",type=integer,JSONPath=`.status.timesRedeemed`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PromotionCode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe promotion code.
	// +required
	Spec PromotionCodeSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status PromotionCodeStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *PromotionCode) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (p *PromotionCode) GetStripeStatus() *StripeStatus { return &p.Status.StripeStatus }

// PromotionCodeList is a list of PromotionCodes.
//
// +kubebuilder:object:root=true
type PromotionCodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PromotionCode `json:"items"`
}
