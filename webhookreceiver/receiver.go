// Package webhookreceiver is the HTTP server that takes Stripe's webhook events: cap the body, verify the
// Stripe-Signature over the raw bytes, store the event as a StripeEvent named from its ID, and acknowledge. It
// never reconciles and never logs bodies or secrets; the StripeEvent worker folds events into status.
package webhookreceiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/stripe/stripe-go/v76/webhook"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// Defaults.
const (
	// DefaultMaxBody caps a request body; larger ones get 413.
	DefaultMaxBody = 1 << 20
	// DefaultTolerance is how far a signature's timestamp may be from now, either way.
	DefaultTolerance = 300 * time.Second
	// Path is where Stripe posts events.
	Path = "/webhooks/stripe"
)

// HandledTypes are the event types the operator uses; others are acknowledged and counted, not stored. The
// creation events of the objects the operator creates are not among them: the create's answer already holds what
// they carry, and each one cost a delivery, a stored StripeEvent and its settling. (A subscription's state reaches
// the worker from the create's answer even when an invoice event was folded first: the handover fills what status
// lacks.) invoice.payment_succeeded is not among them either: invoice.paid covers every payment it reports, and more.
var HandledTypes = []string{
	"customer.updated", "customer.deleted",
	"product.updated", "product.deleted",
	"price.updated", "price.deleted",
	"customer.subscription.updated", "customer.subscription.deleted",
	"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
	"invoice.paid", "invoice.payment_failed", "invoice.payment_action_required",
	"charge.dispute.created", "charge.dispute.closed",
	"coupon.updated", "coupon.deleted",
	"promotion_code.updated",
	"customer.discount.created", "customer.discount.updated", "customer.discount.deleted",
	"tax_rate.updated",
	"customer.tax_id.created", "customer.tax_id.updated", "customer.tax_id.deleted",
	"billing_portal.configuration.updated",
}

// LaterTypes are event types the operator uses that Stripe's 2023-10-16 specification, the API version the
// operator pins its endpoint to, does not list (objects added later, such as billing meters). They are stored when
// Stripe delivers them (an endpoint configured for them in the Dashboard), but the operator does not register them
// with --webhook-public-url, so that its endpoint stays valid for the pinned version.
var LaterTypes = []string{
	"billing.meter.updated", "billing.meter.deactivated", "billing.meter.reactivated",
	"entitlements.active_entitlement_summary.updated",
}

// Handler verifies and stores events.
type Handler struct {
	// Client creates StripeEvents (the receiver's only write).
	Client client.Client
	// Namespace is where StripeEvents are stored.
	Namespace string
	// Secrets returns the signing secrets currently configured (several during a rotation).
	Secrets func(ctx context.Context) ([]string, error)
	// MaxBody and Tolerance default to DefaultMaxBody and DefaultTolerance.
	MaxBody   int64
	Tolerance time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log logr.Logger
}

// storedTypes are the event types the receiver stores: HandledTypes and LaterTypes.
func storedTypes() []string { return append(slices.Clone(HandledTypes), LaterTypes...) }

// handledSet is storedTypes as a set, built once: handlers serve concurrent requests and only read it.
var handledSet = func() map[string]bool {
	set := map[string]bool{}
	for _, typ := range storedTypes() {
		set[typ] = true
	}
	return set
}()

func (h *Handler) handledType(t string) bool { return handledSet[t] }

// envelope is what the receiver reads of an event.
type envelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Account    string `json:"account"`
	Data       struct {
		Object struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"object"`
	} `json:"data"`
}

// Result labels for the events metric.
const (
	resultStored    = "stored"
	resultDuplicate = "duplicate"
	resultIgnored   = "ignored"
	resultError     = "error"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(r)
	requestDuration.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	w.WriteHeader(code)
}

// serve handles one delivery and returns the status code to answer.
func (h *Handler) serve(r *http.Request) int {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed
	}
	maxBody := h.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return http.StatusBadRequest
	}
	if int64(len(payload)) > maxBody {
		verificationFailures.WithLabelValues(reasonTooLarge).Inc()
		return http.StatusRequestEntityTooLarge
	}
	ev, reason := h.verify(r.Context(), payload, r.Header.Get("Stripe-Signature"))
	if reason != "" {
		verificationFailures.WithLabelValues(reason).Inc()
		if reason == reasonNoSecret {
			return http.StatusServiceUnavailable
		}
		return http.StatusBadRequest
	}
	if !h.handledType(ev.Type) {
		events.WithLabelValues(ev.Type, resultIgnored).Inc()
		return http.StatusOK
	}
	obj := h.stripeEvent(ev, payload)
	if err := h.Client.Create(r.Context(), obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			events.WithLabelValues(ev.Type, resultDuplicate).Inc()
			return http.StatusOK
		}
		events.WithLabelValues(ev.Type, resultError).Inc()
		h.Log.Error(err, "Storing a Stripe event failed; Stripe will retry", "eventID", ev.ID, "type", ev.Type)
		return http.StatusServiceUnavailable
	}
	events.WithLabelValues(ev.Type, resultStored).Inc()
	return http.StatusOK
}

// verify checks the signature against every configured secret and the timestamp against the tolerance (both
// ways), then parses the envelope. It returns the failure reason, or "".
func (h *Handler) verify(ctx context.Context, payload []byte, header string) (*envelope, string) {
	if header == "" {
		return nil, reasonMissingHeader
	}
	ts, ok := signatureTime(header)
	if !ok {
		return nil, reasonMalformedHeader
	}
	tolerance := h.Tolerance
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if age := now().Sub(ts); age > tolerance {
		return nil, reasonTooOld
	} else if age < -tolerance {
		return nil, reasonInFuture
	}
	secrets, err := h.Secrets(ctx)
	if err != nil || len(secrets) == 0 {
		h.Log.Error(err, "No webhook signing secret is configured")
		return nil, reasonNoSecret
	}
	verified := false
	for _, s := range secrets {
		// The timestamp was checked above; stripe-go checks the HMAC over the raw bytes.
		if err := webhook.ValidatePayloadIgnoringTolerance(payload, header, s); err == nil {
			verified = true
			break
		} else if errors.Is(err, webhook.ErrInvalidHeader) || errors.Is(err, webhook.ErrNotSigned) {
			return nil, reasonMalformedHeader
		}
	}
	if !verified {
		return nil, reasonBadSignature
	}
	var ev envelope
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Type == "" || ev.Object != "event" {
		return nil, reasonInvalidPayload
	}
	return &ev, ""
}

// signatureTime reads t= from a Stripe-Signature header.
func signatureTime(header string) (time.Time, bool) {
	var t time.Time
	var hasV1 bool
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, false
		}
		switch k {
		case "t":
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			t = time.Unix(sec, 0)
		case "v1":
			hasV1 = true
		}
	}
	return t, !t.IsZero() && hasV1
}

// EventName is the StripeEvent name for a Stripe event ID: deterministic, so a redelivery collides, and a valid
// Kubernetes name whatever the ID's case.
func EventName(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "evt-" + hex.EncodeToString(sum[:16])
}

func (h *Handler) stripeEvent(ev *envelope, payload []byte) *billingv1.StripeEvent {
	var compact bytes.Buffer
	stored := ""
	if err := json.Compact(&compact, payload); err == nil && compact.Len() <= billingv1.MaxEventPayloadBytes {
		stored = compact.String()
	}
	return &billingv1.StripeEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: EventName(ev.ID),
			Labels: map[string]string{"billing.stripe-operator.io/event-type": labelValue(ev.Type)}},
		Spec: billingv1.StripeEventSpec{EventID: ev.ID, Type: ev.Type, Created: ev.Created, APIVersion: ev.APIVersion,
			Livemode: ev.Livemode, Account: ev.Account, ObjectID: ev.Data.Object.ID,
			ObjectType: ev.Data.Object.Object, Payload: stored},
	}
}

// labelValue makes an event type a valid label value (at most 63 characters of [A-Za-z0-9._-]).
func labelValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "._-")
	if len(out) > 63 {
		out = strings.Trim(out[:63], "._-")
	}
	return out
}

// String describes the handler for logs.
func (h *Handler) String() string {
	return fmt.Sprintf("stripe webhook receiver (namespace %s)", h.Namespace)
}
