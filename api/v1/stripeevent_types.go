package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StripeEventPhase is where a stored event is in its processing.
// +kubebuilder:validation:Enum=Pending;Processed;Unroutable;Failed
type StripeEventPhase string

const (
	// EventPending: stored, and not yet recorded as processed: not folded yet, or (without a compaction delay, which
	// is the default) folded and waiting half a second for the event ledger, after which it is deleted.
	EventPending StripeEventPhase = "Pending"
	// EventProcessed: folded into its target's status (or found to be older than what the status holds); set only
	// with --event-compaction-delay, which keeps processed events that long to be looked at.
	EventProcessed StripeEventPhase = "Processed"
	// EventUnroutable: no billing object in this cluster matches the event, after retries for out-of-order delivery.
	EventUnroutable StripeEventPhase = "Unroutable"
	// EventFailed: processing failed for good; the message says why.
	EventFailed StripeEventPhase = "Failed"
)

// MaxEventPayloadBytes bounds the stored payload of a StripeEvent. Larger payloads are not stored: the worker
// re-fetches the object from Stripe instead.
const MaxEventPayloadBytes = 262144

// StripeEventSpec is a verified Stripe event as received. It is written once by the webhook receiver and never
// changed.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a StripeEvent's spec is immutable"
type StripeEventSpec struct {
	// eventID is Stripe's event ID (evt_...).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	EventID string `json:"eventID"`

	// type is the event type, for example customer.subscription.updated.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Type string `json:"type"`

	// created is when Stripe created the event, in Unix seconds (one-second resolution).
	// +required
	Created int64 `json:"created"`

	// apiVersion is the Stripe API version the payload is rendered in.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	APIVersion string `json:"apiVersion,omitempty"`

	// livemode is true for live-mode events.
	// +optional
	Livemode bool `json:"livemode,omitempty"`

	// account is the connected account the event belongs to, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Account string `json:"account,omitempty"`

	// objectID is the ID of data.object (cus_..., sub_..., in_...).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ObjectID string `json:"objectID,omitempty"`

	// objectType is data.object.object (customer, subscription, invoice, ...).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ObjectType string `json:"objectType,omitempty"`

	// payload is the event's JSON, compacted and bounded to 256 KiB; empty when the event was larger.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	Payload string `json:"payload,omitempty"`
}

// EventTarget names the billing object an event was routed to.
type EventTarget struct {
	// kind of the billing object: Customer, Product, Price, Subscription, Coupon, PromotionCode or TaxRate.
	// +required
	// +kubebuilder:validation:Enum=Customer;Product;Price;Subscription;Coupon;PromotionCode;TaxRate;Meter;BillingPortalConfiguration;EntitlementFeature
	Kind string `json:"kind"`
	// namespace of the billing object.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the billing object.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// StripeEventStatus is the processing state of the event.
type StripeEventStatus struct {
	// phase is Pending, Processed, Unroutable or Failed.
	// +optional
	Phase StripeEventPhase `json:"phase,omitempty"`

	// attempts counts processing attempts.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Attempts int32 `json:"attempts,omitempty"`

	// target is the billing object the event was routed to.
	// +optional
	Target *EventTarget `json:"target,omitempty"`

	// processedAt is when the event reached a final phase; collection counts the retention period from it.
	// +optional
	ProcessedAt *metav1.Time `json:"processedAt,omitempty"`

	// message says what happened, for Unroutable and Failed in particular.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// StripeEvent is a verified Stripe webhook event stored durably: the receiver writes it and acknowledges Stripe,
// and the event worker folds it into the status of the billing object it concerns. Its name derives from the
// Stripe event ID, so a redelivered event is recognised as a duplicate.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sevt
// +kubebuilder:printcolumn:name="Event ID",type=string,JSONPath=`.spec.eventID`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Object",type=string,JSONPath=`.spec.objectID`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StripeEvent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the event as Stripe sent it.
	// +required
	Spec StripeEventSpec `json:"spec"`

	// status is the processing state.
	// +optional
	Status StripeEventStatus `json:"status,omitempty"`
}

// StripeEventList is a list of StripeEvents.
//
// +kubebuilder:object:root=true
type StripeEventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeEvent `json:"items"`
}
