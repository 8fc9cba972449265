package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Condition types. Ready, Reconciling and Stalled follow kstatus, so kubectl wait, kstatus, Argo CD and Flux read them.
const (
	// ConditionReady is True when the Stripe object matches the spec.
	ConditionReady = "Ready"
	// ConditionReconciling is True (abnormal-true) while the operator has work in flight for the object.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True (abnormal-true) when a person must act before the operator can make progress.
	ConditionStalled = "Stalled"
	// ConditionPaymentFailed is True on a Subscription whose latest payment failed; its message says why.
	ConditionPaymentFailed = "PaymentFailed"
	// ConditionInSync is set while the object is observed only (managementPolicy Observe, or the operator's
	// --observe-only): True when Stripe matches the spec, False when status.drift lists differences.
	ConditionInSync = "InSync"
	// ConditionDisputed is True on a Customer with an open dispute (a chargeback) of one of its payments; its
	// message names the dispute, the amount and the reason. It turns False, with the outcome as its reason, when the
	// last open dispute closes.
	ConditionDisputed = "Disputed"
	// ConditionSpecDiverged is True on a Subscription with changesInStripe Follow whose items, quantities,
	// cancelAtPeriodEnd or discount were changed in Stripe, so the spec no longer describes it; its message names the fields.
	ConditionSpecDiverged = "SpecDiverged"
)

// Condition reasons. Every condition the operator writes uses one of these.
const (
	// ReasonSynced: the Stripe object matches the spec.
	ReasonSynced = "Synced"
	// ReasonObserved: the object is observed only (managementPolicy Observe) and was read from Stripe (Ready=True);
	// InSync and status.drift say whether Stripe matches the spec.
	ReasonObserved = "Observed"
	// ReasonNoDrift: Stripe matches the spec (InSync=True).
	ReasonNoDrift = "NoDrift"
	// ReasonDrifted: Stripe differs from the spec in the fields status.drift lists (InSync=False).
	ReasonDrifted = "Drifted"
	// ReasonNothingToObserve: an observed object names no Stripe object (no status.id and no spec.adopt), and the
	// operator creates nothing while observing.
	ReasonNothingToObserve = "NothingToObserve"
	// ReasonCreating: the Stripe object is being created.
	ReasonCreating = "Creating"
	// ReasonUpdating: the Stripe object is being brought in line with the spec.
	ReasonUpdating = "Updating"
	// ReasonDeleting: the object is being deleted under its deletion policy.
	ReasonDeleting = "Deleting"
	// ReasonDependencyNotReady: a referenced Customer, Product or Price has no Stripe ID yet.
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonRateLimited: Stripe answered 429; the shared rate budget is backing off.
	ReasonRateLimited = "RateLimited"
	// ReasonStripeUnavailable: Stripe answered 5xx, timed out or could not be reached; retried with backoff.
	ReasonStripeUnavailable = "StripeUnavailable"
	// ReasonRequestInProgress: Stripe reported the same idempotency key in use, or a lock timeout; retried shortly.
	ReasonRequestInProgress = "RequestInProgress"
	// ReasonInvalidRequest: Stripe refused the request as invalid; the message carries Stripe's message and param.
	ReasonInvalidRequest = "InvalidRequest"
	// ReasonReferenceNotFound: a Stripe ID named in the spec does not exist in Stripe, or a referenced object
	// (customerRef, productRef, priceRef) has not existed, or had no Stripe ID, for the grace period.
	ReasonReferenceNotFound = "ReferenceNotFound"
	// ReasonAuthenticationFailed: Stripe refused the API key (401).
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonPermissionDenied: the restricted key lacks a permission (403); the message names it.
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonCredentialsNotFound: no usable credentials Secret was found for the object's namespace.
	ReasonCredentialsNotFound = "CredentialsNotFound"
	// ReasonLiveModeNotAllowed: the credentials hold a live-mode key and the operator was not started to allow it.
	ReasonLiveModeNotAllowed = "LiveModeNotAllowed"
	// ReasonDeletedInStripe: the Stripe object was deleted outside the operator; it is not re-created silently.
	ReasonDeletedInStripe = "DeletedInStripe"
	// ReasonDriftLoop: a change made in Stripe came back within the drift-loop window of the operator restoring it;
	// the operator stopped restoring it until the spec changes (or changesInStripe is Follow).
	ReasonDriftLoop = "DriftLoop"
	// ReasonChangedInStripe: SpecDiverged is True; Stripe's values stand (changesInStripe Follow).
	ReasonChangedInStripe = "ChangedInStripe"
	// ReasonSpecMatches: SpecDiverged is False; the spec describes the subscription.
	ReasonSpecMatches = "SpecMatches"
	// ReasonPaymentSucceeded: the latest invoice was paid (PaymentFailed=False).
	ReasonPaymentSucceeded = "PaymentSucceeded"
	// ReasonPaymentFailed: Stripe refused a payment (a card error); the message says why.
	ReasonPaymentFailed = "PaymentFailed"
	// ReasonDisputeOpened: a payment of the customer is disputed and the dispute is open (Disputed=True).
	ReasonDisputeOpened = "DisputeOpened"
	// ReasonDisputeWon: the customer's last open dispute closed in the merchant's favour (Disputed=False).
	ReasonDisputeWon = "DisputeWon"
	// ReasonDisputeLost: the customer's last open dispute closed in the card holder's favour; the money is gone
	// (Disputed=False).
	ReasonDisputeLost = "DisputeLost"
	// ReasonDisputeClosed: the customer's last open dispute closed otherwise (an inquiry or early warning closed
	// without becoming a chargeback; Disputed=False).
	ReasonDisputeClosed = "DisputeClosed"
)

// Annotations that users set on billing objects.
const (
	// AnnotationReconcileRequestedAt asks for a reconcile now when its value changes (any string, a timestamp by
	// convention), the same shape as Flux's reconcile.fluxcd.io/requestedAt.
	AnnotationReconcileRequestedAt = "billing.stripe-operator.io/reconcile-requested-at"
	// AnnotationResyncInterval overrides the operator's periodic resync interval for one object (a Go duration,
	// for example "6h").
	AnnotationResyncInterval = "billing.stripe-operator.io/resync-interval"
	// AnnotationRecreate, set to the Stripe ID shown in status.id, asks the operator to create a new Stripe object
	// for an object whose Stripe counterpart was deleted outside the operator (reason DeletedInStripe).
	AnnotationRecreate = "billing.stripe-operator.io/recreate"
)

// AnnotationPendingCreate holds the operator's pending-create record (see PendingCreate). Users do not set it.
const AnnotationPendingCreate = "billing.stripe-operator.io/pending-create"

// Finalizers the operator adds.
const (
	// Finalizer holds a billing object until its deletion policy has been carried out in Stripe.
	Finalizer = "billing.stripe-operator.io/finalizer"
	// CredentialsInUseFinalizer holds a credentials Secret while billing objects still need it.
	CredentialsInUseFinalizer = "billing.stripe-operator.io/credentials-in-use"
)

// Stripe metadata keys stamped on every object the operator creates, so each can be traced back to its resource.
// User metadata may not use the k8s_ prefix.
const (
	MetadataUID       = "k8s_uid"
	MetadataNamespace = "k8s_namespace"
	MetadataName      = "k8s_name"
	MetadataKind      = "k8s_kind"
	MetadataCluster   = "k8s_cluster"
)

// Metadata is a set of Stripe metadata key-value pairs. Stripe allows 50 keys; 5 are reserved for the operator's
// k8s_ stamp, so a spec may carry 45. Keys are at most 40 characters without square brackets, values at most 500.
//
// +kubebuilder:validation:MaxProperties=45
// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 40)",message="metadata keys must be 1 to 40 characters long"
// +kubebuilder:validation:XValidation:rule="self.all(k, !k.contains('[') && !k.contains(']'))",message="metadata keys must not contain '[' or ']'"
// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('k8s_'))",message="metadata keys starting with 'k8s_' are reserved for the operator"
// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 500)",message="metadata values must be at most 500 characters long"
type Metadata map[string]string

// ManagementPolicy says whether the operator writes to Stripe for an object.
// +kubebuilder:validation:Enum=Manage;Observe
type ManagementPolicy string

// Management policies.
const (
	// ManagementManage creates, updates and deletes the Stripe object so that it matches the spec (the default).
	ManagementManage ManagementPolicy = "Manage"
	// ManagementObserve only reads the Stripe object (named by status.id or spec.adopt) and reports how it differs
	// from the spec in status.drift and the InSync condition; nothing is written to Stripe, not even on deletion.
	ManagementObserve ManagementPolicy = "Observe"
)

// Management is the part of the spec every billing kind shares.
type Management struct {
	// managementPolicy is Manage (default: the operator writes to Stripe) or Observe (read only: status.drift lists
	// what Manage would change; switching to Manage applies exactly that).
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// Managed is implemented by every billing kind: it returns spec.managementPolicy.
// +kubebuilder:object:generate=false
type Managed interface {
	GetManagementPolicy() ManagementPolicy
}

// MaxDrift is the number of differences status.drift lists at most.
const MaxDrift = 20

// FieldDrift is one field in which Stripe differs from the spec.
type FieldDrift struct {
	// field is Stripe's name of the field (metadata keys as metadata.<key>).
	// +required
	// +kubebuilder:validation:MaxLength=256
	Field string `json:"field"`

	// spec is the value the spec asks for ("" for none).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Spec string `json:"spec,omitempty"`

	// stripe is the value Stripe holds ("" for none).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Stripe string `json:"stripe,omitempty"`
}

// LocalObjectReference names an object of the expected kind in the same namespace.
type LocalObjectReference struct {
	// name of the referenced object in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PendingCreate records a create that was sent to Stripe and whose result may not have been recorded yet. It is kept,
// as JSON, in the annotation AnnotationPendingCreate, written together with the finalizer in one resourceVersion-checked
// update before the request, so after a crash the operator replays the same idempotency key (within Stripe's 24 h
// window) or finds the object by its k8s_uid metadata, and never creates a second one. The create is finished when
// status.createKey equals its idempotencyKey.
// +kubebuilder:object:generate=false
type PendingCreate struct {
	// idempotencyKey sent with the create request.
	// +required
	// +kubebuilder:validation:MaxLength=255
	IdempotencyKey string `json:"idempotencyKey"`

	// generation of the object the create was made for.
	// +required
	Generation int64 `json:"generation"`

	// startedAt is when the first attempt began; recovery lists Stripe objects created since then.
	// +required
	StartedAt metav1.Time `json:"startedAt"`
}

// AttachedPaymentMethod records the payment method that spec.defaultPaymentMethod was attached as. Stripe turns a
// test token such as pm_card_visa into a new pm_ object each time it is used, so the default Stripe holds is compared
// with id, not with the spec's value.
type AttachedPaymentMethod struct {
	// spec is the value of spec.defaultPaymentMethod that was attached.
	// +required
	// +kubebuilder:validation:MaxLength=255
	Spec string `json:"spec"`

	// id of the payment method attached to the customer (pm_...), which is the default.
	// +required
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// StripeStatus is the status every billing kind shares.
type StripeStatus struct {
	// id is the Stripe ID of the object (cus_..., prod_..., price_..., sub_...).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id,omitempty"`

	// observedGeneration is the generation the operator last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled (kstatus), and kind-specific ones such as PaymentFailed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// createKey is the idempotency key of the create that made status.id. A pending-create annotation with another
	// key is a create whose result may not have been recorded.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	CreateKey string `json:"createKey,omitempty"`

	// lastSyncedAt is when the operator last read or wrote the Stripe object successfully.
	// +optional
	LastSyncedAt *metav1.Time `json:"lastSyncedAt,omitempty"`

	// lastEventID is the newest Stripe event folded into this status.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	LastEventID string `json:"lastEventID,omitempty"`

	// lastEventCreated is the creation time of that event, in Unix seconds as Stripe reports it.
	// +optional
	LastEventCreated int64 `json:"lastEventCreated,omitempty"`

	// syncRequest names the Stripe event after which the object must be read from Stripe again (an event of another
	// API version, a change made outside the operator, a deletion). Written by the event worker only.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	SyncRequest string `json:"syncRequest,omitempty"`

	// lastHandledSyncRequest is the syncRequest the reconciler last acted on by reading Stripe.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`

	// lastHandledReconcileAt is the value of the reconcile-requested-at annotation the operator last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// drift lists, while the object is observed only, the fields in which Stripe differs from the spec (at most 20;
	// the InSync condition counts them all). Empty when managed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Drift []FieldDrift `json:"drift,omitempty"`
}

// StripeObject is implemented by every billing kind, so the generic reconcile loop can work on any of them.
// +kubebuilder:object:generate=false
type StripeObject interface {
	metav1.Object
	runtime.Object
	// GetStripeStatus returns the shared status of the object, for reading and writing.
	GetStripeStatus() *StripeStatus
}
