package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeterFormula says how a meter aggregates the values of its events over a billing period.
// +kubebuilder:validation:Enum=sum;count
type MeterFormula string

// Meter formulas.
const (
	// MeterSum adds the events' values.
	MeterSum MeterFormula = "sum"
	// MeterCount counts the events.
	MeterCount MeterFormula = "count"
)

// MeterDeletionPolicy says what happens to a Stripe billing meter when its object is deleted. Stripe cannot delete
// a meter; it can deactivate it.
// +kubebuilder:validation:Enum=Deactivate;Orphan
type MeterDeletionPolicy string

const (
	// MeterDeactivate deactivates the meter (the default): it refuses new meter events; prices on it keep billing
	// what was recorded.
	MeterDeactivate MeterDeletionPolicy = "Deactivate"
	// MeterOrphan leaves the meter as it is.
	MeterOrphan MeterDeletionPolicy = "Orphan"
)

// MeterAggregation is how the meter aggregates its events.
type MeterAggregation struct {
	// formula is sum (the events' values added up) or count (the number of events). Immutable.
	// +required
	Formula MeterFormula `json:"formula"`
}

// MeterCustomerMapping says which key of a meter event's payload names the Stripe customer.
type MeterCustomerMapping struct {
	// eventPayloadKey is the payload key holding the customer's Stripe ID (default stripe_customer_id). Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	EventPayloadKey string `json:"eventPayloadKey"`
}

// MeterValueSettings says which key of a meter event's payload holds its value.
type MeterValueSettings struct {
	// eventPayloadKey is the payload key holding the event's value (default value). Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	EventPayloadKey string `json:"eventPayloadKey"`
}

// MeterAdopt names an existing Stripe billing meter to take over instead of creating one.
type MeterAdopt struct {
	// id of the Stripe meter to adopt (mtr_...).
	// +required
	// +kubebuilder:validation:Pattern=`^mtr_[A-Za-z0-9]+$`
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// MeterSpec is the desired Stripe billing meter. Stripe lets only the display name change: eventName, the
// aggregation formula and the payload keys are immutable here too, so a new meter is a new Meter.
//
// +kubebuilder:validation:XValidation:rule="self.eventName == oldSelf.eventName",message="eventName is immutable: Stripe cannot rename a meter's events; create a new Meter"
// +kubebuilder:validation:XValidation:rule="self.defaultAggregation == oldSelf.defaultAggregation",message="defaultAggregation is immutable: Stripe cannot change how a meter aggregates; create a new Meter"
// +kubebuilder:validation:XValidation:rule="has(self.customerMapping) == has(oldSelf.customerMapping) && (!has(self.customerMapping) || self.customerMapping == oldSelf.customerMapping)",message="customerMapping is immutable: Stripe cannot change a meter's customer mapping; create a new Meter"
// +kubebuilder:validation:XValidation:rule="has(self.valueSettings) == has(oldSelf.valueSettings) && (!has(self.valueSettings) || self.valueSettings == oldSelf.valueSettings)",message="valueSettings is immutable: Stripe cannot change a meter's value key; create a new Meter"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.adopt) || (has(self.adopt) && self.adopt == oldSelf.adopt)",message="adopt is immutable once set"
type MeterSpec struct {
	Management `json:",inline"`

	// displayName is the meter's name, not shown to customers. It may change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	DisplayName string `json:"displayName"`

	// eventName is the event_name of the meter events this meter records, unique among the account's meters.
	// Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	EventName string `json:"eventName"`

	// defaultAggregation is how the meter aggregates its events over a billing period. Immutable.
	// +required
	DefaultAggregation MeterAggregation `json:"defaultAggregation"`

	// customerMapping names the payload key holding the customer (Stripe's default: stripe_customer_id).
	// Immutable.
	// +optional
	CustomerMapping *MeterCustomerMapping `json:"customerMapping,omitempty"`

	// valueSettings names the payload key holding the value (Stripe's default: value). Immutable.
	// +optional
	ValueSettings *MeterValueSettings `json:"valueSettings,omitempty"`

	// deletionPolicy says what happens in Stripe when this object is deleted: Deactivate (default; Stripe cannot
	// delete a meter) or Orphan.
	// +optional
	// +kubebuilder:default=Deactivate
	DeletionPolicy MeterDeletionPolicy `json:"deletionPolicy,omitempty"`

	// adopt takes over an existing Stripe meter instead of creating one. Its immutable fields must match the spec.
	// +optional
	Adopt *MeterAdopt `json:"adopt,omitempty"`
}

// MeterStatus is what Stripe holds for the meter.
type MeterStatus struct {
	StripeStatus `json:",inline"`

	// stripeStatus is the meter's status in Stripe: active or inactive (deactivated; it refuses meter events).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	StripeState string `json:"stripeStatus,omitempty"`
}

// Meter is a Stripe billing meter: it aggregates the meter events a system reports into the usage metered Prices
// bill.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=smeter,categories=stripe
// +kubebuilder:printcolumn:name="Stripe ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Event Name",type=string,JSONPath=`.spec.eventName`
// +kubebuilder:printcolumn:name="Formula",type=string,JSONPath=`.spec.defaultAggregation.formula`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.stripeStatus`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Meter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired Stripe billing meter.
	// +required
	Spec MeterSpec `json:"spec"`

	// status is what Stripe holds.
	// +optional
	Status MeterStatus `json:"status,omitempty"`
}

// GetManagementPolicy implements Managed.
func (o *Meter) GetManagementPolicy() ManagementPolicy { return o.Spec.ManagementPolicy }

// GetStripeStatus implements StripeObject.
func (o *Meter) GetStripeStatus() *StripeStatus { return &o.Status.StripeStatus }

// MeterList is a list of Meters.
//
// +kubebuilder:object:root=true
type MeterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Meter `json:"items"`
}
