package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PortalDeletionPolicy says what happens to a Stripe customer portal configuration when its object is deleted.
// Stripe cannot delete a portal configuration.
// +kubebuilder:validation:Enum=Deactivate;Orphan
type PortalDeletionPolicy string

const (
	// PortalDeactivate deactivates the configuration (active=false): no new portal session can use it.
	PortalDeactivate PortalDeletionPolicy = "Deactivate"
	// PortalOrphan leaves the configuration as it is.
	PortalOrphan PortalDeletionPolicy = "Orphan"
)

// PortalProrationBehavior is how the portal prorates a subscription change or cancellation.
// +kubebuilder:validation:Enum=none;create_prorations;always_invoice
type PortalProrationBehavior string

// PortalBusinessProfile is the business information shown to customers in the portal.
type PortalBusinessProfile struct {
	// headline is the message shown to customers in the portal (at most 60 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=60
	Headline string `json:"headline,omitempty"`

	// privacyPolicyURL links to the business's public privacy policy.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	PrivacyPolicyURL string `json:"privacyPolicyURL,omitempty"`

	// termsOfServiceURL links to the business's public terms of service.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	TermsOfServiceURL string `json:"termsOfServiceURL,omitempty"`
}

// PortalFeatureToggle is a portal feature that is only on or off.
type PortalFeatureToggle struct {
	// enabled turns the feature on.
	// +required
	Enabled bool `json:"enabled"`
}

// PortalCustomerUpdate lets customers change their details in the portal.
type PortalCustomerUpdate struct {
	// enabled turns the feature on.
	// +required
	Enabled bool `json:"enabled"`

	// allowedUpdates are the details customers may change: address, email, name, phone, shipping, tax_id.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	// +kubebuilder:validation:items:Enum=address;email;name;phone;shipping;tax_id
	AllowedUpdates []string `json:"allowedUpdates,omitempty"`
}

// PortalSubscriptionCancel lets customers cancel their subscriptions in the portal.
type PortalSubscriptionCancel struct {
	// enabled turns the feature on.
	// +required
	Enabled bool `json:"enabled"`

	// mode is at_period_end (default: the subscription runs to the end of the period) or immediately.
	// +optional
	// +kubebuilder:default=at_period_end
	// +kubebuilder:validation:Enum=at_period_end;immediately
	Mode string `json:"mode,omitempty"`

	// prorationBehavior applies to a cancellation with mode immediately: none (default), create_prorations or
	// always_invoice.
	// +optional
	// +kubebuilder:default=none
	ProrationBehavior PortalProrationBehavior `json:"prorationBehavior,omitempty"`
}

// PriceReference names a price: a Price in this namespace, or a Stripe price ID.
//
// +kubebuilder:validation:XValidation:rule="has(self.priceRef) != has(self.priceID)",message="each price needs exactly one of priceRef or priceID"
type PriceReference struct {
	// priceRef names a Price in this namespace; when it rolls to a successor, the configuration moves to it.
	// +optional
	PriceRef *LocalObjectReference `json:"priceRef,omitempty"`

	// priceID is the Stripe ID of a price not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^price_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	PriceID string `json:"priceID,omitempty"`
}

// PortalProduct is a product customers may switch to in the portal, with the prices they may choose.
//
// +kubebuilder:validation:XValidation:rule="has(self.productRef) != has(self.productID)",message="each product needs exactly one of productRef or productID"
type PortalProduct struct {
	// productRef names a Product in this namespace.
	// +optional
	ProductRef *LocalObjectReference `json:"productRef,omitempty"`

	// productID is the Stripe ID of a product not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^prod_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ProductID string `json:"productID,omitempty"`

	// prices of the product customers may choose (1 to 10); each must belong to the product.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Prices []PriceReference `json:"prices"`
}

// PortalSubscriptionUpdate lets customers change their subscriptions in the portal.
//
// +kubebuilder:validation:XValidation:rule="!self.enabled || (has(self.products) && size(self.products) > 0)",message="subscriptionUpdate needs at least one product when enabled"
type PortalSubscriptionUpdate struct {
	// enabled turns the feature on.
	// +required
	Enabled bool `json:"enabled"`

	// defaultAllowedUpdates are what customers may change: price, quantity, promotion_code.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:Enum=price;quantity;promotion_code
	DefaultAllowedUpdates []string `json:"defaultAllowedUpdates,omitempty"`

	// prorationBehavior is none (default), create_prorations or always_invoice.
	// +optional
	// +kubebuilder:default=none
	ProrationBehavior PortalProrationBehavior `json:"prorationBehavior,omitempty"`

	// products customers may switch between (at most 10), each with its allowed prices.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Products []PortalProduct `json:"products,omitempty"`
}

// PortalFeatures are the features of the portal. A feature that is not listed is disabled.
type PortalFeatures struct {
	// invoiceHistory shows the customer's invoices.
	// +optional
	InvoiceHistory *PortalFeatureToggle `json:"invoiceHistory,omitempty"`

	// paymentMethodUpdate lets customers change their payment methods.
	// +optional
	PaymentMethodUpdate *PortalFeatureToggle `json:"paymentMethodUpdate,omitempty"`

	// customerUpdate lets customers change their details.
	// +optional
	CustomerUpdate *PortalCustomerUpdate `json:"customerUpdate,omitempty"`

	// subscriptionCancel lets customers cancel their subscriptions.
	// +optional
	SubscriptionCancel *PortalSubscriptionCancel `json:"subscriptionCancel,omitempty"`

	// subscriptionUpdate lets customers change their subscriptions to the listed products and prices.
	// +optional
	SubscriptionUpdate *PortalSubscriptionUpdate `json:"subscriptionUpdate,omitempty"`
}

// BillingPortalConfigurationAdopt names an existing Stripe portal configuration to take over instead of creating one.
type BillingPortalConfigurationAdopt struct {
	// id of the Stripe portal configuration to adopt (bpc_...).
	// +required
	// +kubebuilder:validation:Pattern=`^bpc_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// BillingPortalConfigurationSpec is the desired Stripe customer portal configuration. Every field may change: Stripe
// updates a portal configuration in place.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type BillingPortalConfigurationSpec struct {
	Management `json:",inline"`

	// businessProfile is the business information shown to customers in the portal.
	// +optional
	BusinessProfile *PortalBusinessProfile `json:"businessProfile,omitempty"`

	// features are the portal's features; those not listed are disabled.
	// +required
	Features PortalFeatures `json:"features"`

	// defaultReturnURL is where the portal's link back to your site leads, unless a portal session names another.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	DefaultReturnURL string `json:"defaultReturnURL,omitempty"`

	// active says whether new portal sessions can use the configuration (default true).
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// metadata is copied to the Stripe configuration, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Deactivate (default; Stripe cannot
	// delete a portal configuration) or Orphan.
	// +optional
	// +kubebuilder:default=Deactivate
	DeletionPolicy PortalDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe portal configuration instead of creating one; it is brought to the spec.
	// +optional
	Adopt *BillingPortalConfigurationAdopt `json:"adopt,omitempty"`
}

// PortalProductStatus is a product of subscriptionUpdate resolved to Stripe IDs.
type PortalProductStatus struct {
	// product is the Stripe product ID.
	// +required
	// +kubebuilder:validation:MaxLength=255
	Product string `json:"product"`

	// prices are the Stripe price IDs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Prices []string `json:"prices,omitempty"`
}

// BillingPortalConfigurationStatus is what Stripe holds for the configuration.
type BillingPortalConfigurationStatus struct {
	StripeStatus `json:",inline"`

	// isDefault says whether this is the account's default configuration (the one the Dashboard manages).
	// +optional
	IsDefault bool `json:"isDefault,omitempty"`

	// products are subscriptionUpdate's products and prices as Stripe IDs, as last sent to Stripe: a referenced
	// Price that rolled to a successor moves the configuration to it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Products []PortalProductStatus `json:"products,omitempty"`
}

// BillingPortalConfiguration is a Stripe customer portal configuration: what customers may do in the portal.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sportal,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.spec.active`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BillingPortalConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe portal configuration.
	// +required
	Spec BillingPortalConfigurationSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status BillingPortalConfigurationStatus `json:"status,omitempty"`
}

// GetStripeStatus implements StripeObject.
func (c *BillingPortalConfiguration) GetStripeStatus() *StripeStatus { return &c.Status.StripeStatus }

// GetManagementPolicy implements Managed.
func (c *BillingPortalConfiguration) GetManagementPolicy() ManagementPolicy {
	return c.Spec.ManagementPolicy
}

// BillingPortalConfigurationList is a list of BillingPortalConfigurations.
//
// +kubebuilder:object:root=true
type BillingPortalConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BillingPortalConfiguration `json:"items"`
}
