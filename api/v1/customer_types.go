package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CustomerDeletionPolicy says what happens to the Stripe customer when the Customer is deleted.
// +kubebuilder:validation:Enum=Orphan;Delete
type CustomerDeletionPolicy string

const (
	// CustomerOrphan leaves the Stripe customer in place (the default: deleting a Stripe customer cancels all of its
	// subscriptions and cannot be undone).
	CustomerOrphan CustomerDeletionPolicy = "Orphan"
	// CustomerDelete deletes the Stripe customer, which cancels its subscriptions.
	CustomerDelete CustomerDeletionPolicy = "Delete"
)

// Address is a postal address as Stripe stores it.
type Address struct {
	// line1 is the street, PO box or company name.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Line1 string `json:"line1,omitempty"`
	// line2 is the apartment, suite, unit or building.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Line2 string `json:"line2,omitempty"`
	// city, district, suburb, town or village.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	City string `json:"city,omitempty"`
	// state, county, province or region.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	State string `json:"state,omitempty"`
	// postalCode is the ZIP or postal code.
	// +optional
	// +kubebuilder:validation:MaxLength=20
	PostalCode string `json:"postalCode,omitempty"`
	// country is the two-letter ISO 3166-1 alpha-2 country code, for example US or DE.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	Country string `json:"country,omitempty"`
}

// TaxExempt is a customer's tax status in Stripe.
// +kubebuilder:validation:Enum=none;exempt;reverse
type TaxExempt string

// Tax statuses.
const (
	TaxExemptNone    TaxExempt = "none"
	TaxExemptExempt  TaxExempt = "exempt"
	TaxExemptReverse TaxExempt = "reverse"
)

// TaxIDType is the type of a customer tax ID, as Stripe names it (API version 2023-10-16).
// +kubebuilder:validation:Enum=ad_nrt;ae_trn;ar_cuit;au_abn;au_arn;bg_uic;bo_tin;br_cnpj;br_cpf;ca_bn;ca_gst_hst;ca_pst_bc;ca_pst_mb;ca_pst_sk;ca_qst;ch_vat;cl_tin;cn_tin;co_nit;cr_tin;do_rcn;ec_ruc;eg_tin;es_cif;eu_oss_vat;eu_vat;gb_vat;ge_vat;hk_br;hu_tin;id_npwp;il_vat;in_gst;is_vat;jp_cn;jp_rn;jp_trn;ke_pin;kr_brn;li_uid;mx_rfc;my_frp;my_itn;my_sst;no_vat;no_voec;nz_gst;pe_ruc;ph_tin;ro_tin;rs_pib;ru_inn;ru_kpp;sa_vat;sg_gst;sg_uen;si_tin;sv_nit;th_vat;tr_tin;tw_vat;ua_vat;us_ein;uy_ruc;ve_rif;vn_tin;za_vat
type TaxIDType string

// CustomerTaxID is a customer tax ID, shown on its invoices. Stripe cannot edit a tax ID: a changed one is a new
// tax ID, and the old one is deleted.
type CustomerTaxID struct {
	// type of the tax ID, for example eu_vat, gb_vat, us_ein or au_abn.
	// +required
	Type TaxIDType `json:"type"`

	// value of the tax ID in the type's format, for example DE123456789.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value"`
}

// CustomerTaxIDStatus is a tax ID of the customer in Stripe.
type CustomerTaxIDStatus struct {
	// id of the tax ID (txi_...).
	// +required
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
	// type of the tax ID.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Type string `json:"type"`
	// value of the tax ID.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value"`
	// country of the tax ID, when Stripe knows it.
	// +optional
	// +kubebuilder:validation:MaxLength=2
	Country string `json:"country,omitempty"`
	// verification is the tax authority's verdict: pending, verified, unverified or unavailable.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Verification string `json:"verification,omitempty"`
}

// CustomerAdopt names an existing Stripe customer to take over instead of creating one.
type CustomerAdopt struct {
	// id of the Stripe customer to adopt.
	// +required
	// +kubebuilder:validation:Pattern=`^cus_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// CustomerSpec is the desired Stripe customer.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.testClock) || (has(self.testClock) && self.testClock == oldSelf.testClock)",message="testClock is immutable: Stripe attaches a customer to a test clock only when it is created"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.testClock) || !has(self.testClock)",message="testClock is immutable: Stripe attaches a customer to a test clock only when it is created"
type CustomerSpec struct {
	Management `json:",inline"`

	// email address of the customer.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	Email string `json:"email,omitempty"`

	// name is the customer's full name or business name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// description is an arbitrary string shown in the Stripe Dashboard.
	// +optional
	// +kubebuilder:validation:MaxLength=350
	Description string `json:"description,omitempty"`

	// phone is the customer's phone number.
	// +optional
	// +kubebuilder:validation:MaxLength=20
	Phone string `json:"phone,omitempty"`

	// address is the customer's postal address.
	// +optional
	Address *Address `json:"address,omitempty"`

	// metadata is copied to the Stripe customer, next to the operator's k8s_ stamp.
	// +optional
	Metadata Metadata `json:"metadata,omitempty"`

	// defaultPaymentMethod is attached to the customer and used for its invoices (invoice_settings.default_payment_method),
	// for example pm_card_visa in test mode. Stripe attaches it as a new pm_ object, which status.defaultPaymentMethod
	// records; a payment method attached to another customer is refused.
	// +optional
	// +kubebuilder:validation:Pattern=`^pm_[A-Za-z0-9_]+$`
	// +kubebuilder:validation:MaxLength=255
	DefaultPaymentMethod string `json:"defaultPaymentMethod,omitempty"`

	// taxExempt is the customer's tax status: none (the default: taxed), exempt, or reverse (reverse charge; the
	// invoice says so).
	// +optional
	TaxExempt TaxExempt `json:"taxExempt,omitempty"`

	// taxIDs are the customer's tax IDs, shown on its invoices (at most 25, each once). Tax IDs in Stripe that are
	// not listed here are deleted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +listMapKey=value
	// +kubebuilder:validation:MaxItems=25
	TaxIDs []CustomerTaxID `json:"taxIDs,omitempty"`

	// testClock attaches the customer to a Stripe test clock when it is created (test mode only; immutable).
	// +optional
	// +kubebuilder:validation:Pattern=`^clock_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	TestClock string `json:"testClock,omitempty"`

	// deletionPolicy says what happens to the Stripe customer when this object is deleted: Orphan (default) keeps it,
	// Delete deletes it and so cancels its subscriptions.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy CustomerDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe customer instead of creating one.
	// +optional
	Adopt *CustomerAdopt `json:"adopt,omitempty"`
}

// DisputeSummary is what the operator knows of a dispute of one of the customer's payments, from Stripe's
// charge.dispute.created and charge.dispute.closed events.
type DisputeSummary struct {
	// id of the Stripe dispute (dp_...).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`

	// status of the dispute as Stripe reports it: needs_response, under_review, warning_needs_response,
	// warning_under_review (open), or won, lost, warning_closed (closed).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Status string `json:"status"`

	// amount disputed, in the currency's smallest unit.
	// +optional
	Amount int64 `json:"amount,omitempty"`

	// currency of the amount, a three-letter ISO code in lowercase.
	// +optional
	// +kubebuilder:validation:MaxLength=3
	Currency string `json:"currency,omitempty"`

	// reason the card holder gave, for example fraudulent or product_not_received.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason,omitempty"`

	// paymentIntent is the disputed payment (pi_...).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	PaymentIntent string `json:"paymentIntent,omitempty"`

	// created is when the dispute was opened, in Unix seconds.
	// +optional
	Created int64 `json:"created,omitempty"`
}

// CustomerStatus is what Stripe holds for the customer.
type CustomerStatus struct {
	StripeStatus `json:",inline"`

	// disputes are the customer's open disputes and the few most recently closed ones (which keep a late
	// redelivery of an older event from reopening them).
	// +optional
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=20
	Disputes []DisputeSummary `json:"disputes,omitempty"`

	// defaultPaymentMethod is the payment method spec.defaultPaymentMethod was attached to the customer as, and
	// which is its invoice default.
	// +optional
	DefaultPaymentMethod *AttachedPaymentMethod `json:"defaultPaymentMethod,omitempty"`

	// taxIDs are the customer's tax IDs in Stripe, with each one's verification.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=25
	TaxIDs []CustomerTaxIDStatus `json:"taxIDs,omitempty"`

	// entitlements are the lookup keys of the customer's active entitlements in Stripe (the features that the
	// products of its active, trialing or past_due subscriptions grant), sorted. Written by the event worker from
	// Stripe's entitlements.active_entitlement_summary.updated events (or, with --entitlement-summary-events=false,
	// from one read per subscription change). Absent when the customer has none: entitlementsConfirmedAt says
	// whether, and when, that was confirmed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=200
	// +kubebuilder:validation:items:MaxLength=80
	Entitlements []string `json:"entitlements,omitempty"`

	// entitlementsConfirmedAt is when Stripe last reported status.entitlements: the creation time of the event, or
	// of the read, it came from. Later changes of the entitlements are folded only when newer than this.
	// +optional
	EntitlementsConfirmedAt *metav1.Time `json:"entitlementsConfirmedAt,omitempty"`
}

// Customer is a Stripe customer.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scus,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Customer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe customer.
	// +required
	Spec CustomerSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status CustomerStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Customer) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (c *Customer) GetStripeStatus() *StripeStatus { return &c.Status.StripeStatus }

// CustomerList is a list of Customers.
//
// +kubebuilder:object:root=true
type CustomerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Customer `json:"items"`
}
