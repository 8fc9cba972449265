package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ArchiveDeletionPolicy says what happens to a Stripe product or price when its object is deleted. Stripe keeps
// products that have prices, and prices, forever, so they are archived (active=false) rather than deleted.
// +kubebuilder:validation:Enum=Archive;Orphan
type ArchiveDeletionPolicy string

const (
	// Archive sets active=false in Stripe (the default).
	Archive ArchiveDeletionPolicy = "Archive"
	// Orphan leaves the Stripe object as it is.
	Orphan ArchiveDeletionPolicy = "Orphan"
)

// ProductAdopt names an existing Stripe product to take over instead of creating one.
type ProductAdopt struct {
	// id of the Stripe product to adopt.
	// +required
	// +kubebuilder:validation:Pattern=`^prod_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// ProductSpec is the desired Stripe product.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type ProductSpec struct {
	Management `json:",inline"`

	// name of the product, shown to customers on invoices and receipts.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	Name string `json:"name"`

	// description of the product, shown to customers.
	// +optional
	// +kubebuilder:validation:MaxLength=1000
	Description string `json:"description,omitempty"`

	// active says whether the product can be bought (default true).
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// metadata is copied to the Stripe product, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// taxCode is a Stripe tax code, for example txcd_10000000.
	// +optional
	// +kubebuilder:validation:Pattern=`^txcd_[0-9]{8}$`
	TaxCode string `json:"taxCode,omitempty"`

	// unitLabel describes one unit of the product on invoices (for example "seat").
	// +optional
	// +kubebuilder:validation:MaxLength=12
	UnitLabel string `json:"unitLabel,omitempty"`

	// statementDescriptor appears on customers' card statements: 5 to 22 characters, at least one letter, none of < > \ ' " *.
	// +optional
	// +kubebuilder:validation:MinLength=5
	// +kubebuilder:validation:MaxLength=22
	// +kubebuilder:validation:XValidation:rule="self.matches('[A-Za-z]') && !self.matches(r'[<>*\"\\x27\\x5c]')",message="statementDescriptor must contain at least one letter and none of < > \\ ' \" *"
	StatementDescriptor string `json:"statementDescriptor,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Archive (default) or Orphan.
	// +optional
	// +kubebuilder:default=Archive
	DeletionPolicy ArchiveDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe product instead of creating one.
	// +optional
	Adopt *ProductAdopt `json:"adopt,omitempty"`

	// features are the entitlement features the product grants to the customers subscribed to it, kept in sync with
	// Stripe's product features: a feature missing in Stripe is attached, one Stripe has and this list lacks is
	// detached. Unset leaves Stripe's product features alone; an empty list detaches them all.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Features []ProductFeatureReference `json:"features,omitempty"`
}

// ProductFeatureReference names an entitlement feature: an EntitlementFeature in the same namespace, or a Stripe
// feature ID.
//
// +kubebuilder:validation:XValidation:rule="has(self.featureRef) != has(self.featureID)",message="exactly one of featureRef and featureID must be set"
type ProductFeatureReference struct {
	// featureRef names an EntitlementFeature in the same namespace; the Product waits for its Stripe ID.
	// +optional
	FeatureRef *LocalObjectReference `json:"featureRef,omitempty"`

	// featureID is the ID of a Stripe feature (feat_...) not managed in this cluster.
	// +optional
	// +kubebuilder:validation:Pattern=`^feat_[A-Za-z0-9_]+$`
	// +kubebuilder:validation:MaxLength=255
	FeatureID string `json:"featureID,omitempty"`
}

// AttachedFeature is a feature attached to the product in Stripe.
type AttachedFeature struct {
	// id of the Stripe product feature (the attachment).
	// +required
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`

	// featureID is the attached feature (feat_...).
	// +required
	// +kubebuilder:validation:MaxLength=255
	FeatureID string `json:"featureID"`

	// lookupKey is the feature's lookup key.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	LookupKey string `json:"lookupKey,omitempty"`
}

// ProductStatus is what Stripe holds for the product.
type ProductStatus struct {
	StripeStatus `json:",inline"`

	// defaultPriceID is the product's default_price in Stripe.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	DefaultPriceID string `json:"defaultPriceID,omitempty"`

	// features are the entitlement features attached to the product in Stripe, when spec.features is set.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Features []AttachedFeature `json:"features,omitempty"`
}

// Product is a Stripe product.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sprod,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.spec.active`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Product struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe product.
	// +required
	Spec ProductSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status ProductStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Product) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (p *Product) GetStripeStatus() *StripeStatus { return &p.Status.StripeStatus }

// ProductList is a list of Products.
//
// +kubebuilder:object:root=true
type ProductList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Product `json:"items"`
}
