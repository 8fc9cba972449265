package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxLedgerEntries bounds the events one StripeEventLedger records: the worker opens the next one of the same hour
// when a ledger is full, so that each write stays small (etcd rewrites the whole object on every change).
const MaxLedgerEntries = 500

// StripeEventLedger is the compact record of processed Stripe events: once a StripeEvent has been folded into its
// billing object, the worker records its ID here and deletes the StripeEvent with its payload, so that a
// redelivery is still recognised while the ledger is kept (the event retention, 96 h by default) at a cost of about
// 60 bytes per event instead of the payload's kilobytes. The worker writes one ledger per hour of processing
// (several when an hour holds more than 500 events) and deletes it when the retention has passed.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=sevtl
// +kubebuilder:printcolumn:name="Window",type=date,JSONPath=`.window`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StripeEventLedger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// window is the start of the hour in which the recorded events were processed; the ledger is deleted when the
	// event retention has passed since the end of that hour.
	// +required
	Window metav1.Time `json:"window"`

	// events maps the ID of each processed Stripe event (evt_...) to the billing object it was routed to, as
	// Kind/namespace/name, or "" when it concerned none.
	// +optional
	// +kubebuilder:validation:MaxProperties=500
	Events map[string]string `json:"events,omitempty"`
}

// StripeEventLedgerList is a list of StripeEventLedgers.
//
// +kubebuilder:object:root=true
type StripeEventLedgerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeEventLedger `json:"items"`
}
