package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EntitlementFeatureAdopt names an existing Stripe entitlement feature to take over instead of creating one.
type EntitlementFeatureAdopt struct {
	// id of the Stripe feature to adopt (feat_...).
	// +required
	// +kubebuilder:validation:Pattern=`^feat_[A-Za-z0-9_]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// EntitlementFeatureSpec is the desired Stripe entitlement feature: a monetizable ability of the platform that
// Products grant (Product spec.features) and whose lookup key appears in a Customer's status.entitlements while one
// of its subscriptions grants it.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type EntitlementFeatureSpec struct {
	Management `json:",inline"`

	// name of the feature, for the platform's own use (not shown to customers).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	Name string `json:"name"`

	// lookupKey is the feature's key, unique in the Stripe account, by which controllers gate the feature (it is
	// what a Customer's status.entitlements lists). Stripe cannot change it, so it is immutable here.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="lookupKey is immutable: Stripe cannot change a feature's lookup key; create a new EntitlementFeature"
	LookupKey string `json:"lookupKey"`

	// metadata is copied to the Stripe feature, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Archive (default; Stripe cannot
	// delete a feature: it is set active=false, so it can no longer be attached to products) or Orphan.
	// +optional
	// +kubebuilder:default=Archive
	DeletionPolicy ArchiveDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe feature instead of creating one.
	// +optional
	Adopt *EntitlementFeatureAdopt `json:"adopt,omitempty"`
}

// EntitlementFeatureStatus is what Stripe holds for the feature.
type EntitlementFeatureStatus struct {
	StripeStatus `json:",inline"`

	// active is Stripe's active flag: false once the feature is archived.
	// +optional
	Active *bool `json:"active,omitempty"`
}

// EntitlementFeature is a Stripe entitlement feature (entitlements.feature).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sfeature,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Lookup Key",type=string,JSONPath=`.spec.lookupKey`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EntitlementFeature struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe feature.
	// +required
	Spec EntitlementFeatureSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status EntitlementFeatureStatus `json:"status,omitempty"`
}

// GetStripeStatus implements StripeObject.
func (f *EntitlementFeature) GetStripeStatus() *StripeStatus { return &f.Status.StripeStatus }

// GetManagementPolicy implements Managed.
func (f *EntitlementFeature) GetManagementPolicy() ManagementPolicy { return f.Spec.ManagementPolicy }

// EntitlementFeatureList is a list of EntitlementFeatures.
//
// +kubebuilder:object:root=true
type EntitlementFeatureList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EntitlementFeature `json:"items"`
}
