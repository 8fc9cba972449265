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
