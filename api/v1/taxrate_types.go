package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TaxType is the high-level kind of a tax, as Stripe names it.
// +kubebuilder:validation:Enum=amusement_tax;communications_tax;gst;hst;igst;jct;lease_tax;pst;qst;rst;sales_tax;vat
type TaxType string

// TaxRateAdopt names an existing Stripe tax rate to take over instead of creating one.
type TaxRateAdopt struct {
	// id of the Stripe tax rate to adopt.
	// +required
	// +kubebuilder:validation:Pattern=`^txr_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// TaxRateSpec is the desired Stripe tax rate. Stripe tax rates are immutable in their percentage and whether they
// are inclusive: changing one of those here rolls the tax rate (a successor is created, the old one is archived and
// listed in status.previousIDs), and every Subscription that references this TaxRate by name moves to the
// successor from its next invoice.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type TaxRateSpec struct {
	Management `json:",inline"`

	// displayName is the name of the tax shown to customers on invoices, for example VAT or Sales Tax.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	DisplayName string `json:"displayName"`

	// percentage is the tax rate out of 100 as a decimal string, with at most 4 decimal places, for example "19" or
	// "8.875". Changing it rolls the tax rate to a successor.
	// +required
	// +kubebuilder:validation:Pattern=`^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$`
	// +kubebuilder:validation:MaxLength=8
	Percentage string `json:"percentage"`

	// inclusive says the tax is included in the prices it applies to (default false: added on top). Changing it
	// rolls the tax rate to a successor.
	// +optional
	Inclusive bool `json:"inclusive,omitempty"`

	// country is the two-letter ISO 3166-1 code of the country the tax applies in, for example DE.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	Country string `json:"country,omitempty"`

	// state is the ISO 3166-2 subdivision code without the country prefix, for example NY.
	// +optional
	// +kubebuilder:validation:MaxLength=50
	State string `json:"state,omitempty"`

	// jurisdiction is a label for tax reporting, shown on invoices.
	// +optional
	// +kubebuilder:validation:MaxLength=50
	Jurisdiction string `json:"jurisdiction,omitempty"`

	// taxType is the kind of tax: vat, sales_tax, gst, hst, pst, qst, rst, igst, jct, lease_tax, amusement_tax or
	// communications_tax.
	// +optional
	TaxType TaxType `json:"taxType,omitempty"`

	// description is for internal use, not shown to customers.
	// +optional
	// +kubebuilder:validation:MaxLength=500
	Description string `json:"description,omitempty"`

	// active says whether the tax rate can be newly applied (default true). An archived rate keeps working where it
	// is already set.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// metadata is copied to the Stripe tax rate, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Archive (default; Stripe cannot
	// delete a tax rate) or Orphan.
	// +optional
	// +kubebuilder:default=Archive
	DeletionPolicy ArchiveDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe tax rate instead of creating one.
	// +optional
	Adopt *TaxRateAdopt `json:"adopt,omitempty"`
}

// TaxRateStatus is what Stripe holds for the tax rate.
type TaxRateStatus struct {
	StripeStatus `json:",inline"`

	// previousIDs are the Stripe tax rates this object rolled away from, oldest first. They are archived in Stripe;
	// invoices already issued keep them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	PreviousIDs []string `json:"previousIDs,omitempty"`
}

// TaxRate is a Stripe tax rate.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=stax,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Percentage",type=string,JSONPath=`.spec.percentage`
// +kubebuilder:printcolumn:name="Inclusive",type=boolean,JSONPath=`.spec.inclusive`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TaxRate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe tax rate.
	// +required
	Spec TaxRateSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status TaxRateStatus `json:"status,omitempty"`
}

// GetStripeStatus implements StripeObject.
func (r *TaxRate) GetStripeStatus() *StripeStatus { return &r.Status.StripeStatus }

// GetManagementPolicy implements Managed.
func (r *TaxRate) GetManagementPolicy() ManagementPolicy { return r.Spec.ManagementPolicy }

// TaxRateList is a list of TaxRates.
//
// +kubebuilder:object:root=true
type TaxRateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TaxRate `json:"items"`
}
