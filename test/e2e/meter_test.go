package e2e

import (
	"strings"
	"testing"
)

const meterObjects = `
apiVersion: billing.stripe-operator.io/v1
kind: Meter
metadata: {name: storage}
spec:
  displayName: Storage
  eventName: %s
  defaultAggregation: {formula: sum}
  valueSettings: {eventPayloadKey: gigabytes}
`

// A Meter applied with kubectl becomes Ready with its Stripe meter; kubectl refuses a change of its event name with
// the CRD's message; a rename is applied in Stripe; deleting it deactivates the Stripe meter.
func TestMeterApplyRenameDelete(t *testing.T) {
	ns := namespace(t)
	apply(t, ns, strings.Replace(meterObjects, "%s", ns+"_gb_stored", 1))
	k(t, "wait", ready, "--timeout=120s", "-n", ns, "meter/storage")
	id := get(t, ns, "meter/storage", "{.status.id}")
	m := stripe(t, "GET", "/v1/billing/meters/"+id, nil)
	if m["event_name"] != ns+"_gb_stored" || m["status"] != "active" ||
		field(m, "value_settings", "event_payload_key") != "gigabytes" {
		t.Fatalf("Stripe's meter %s: %v", id, m)
	}
	out, err := kc("", "patch", "-n", ns, "meter/storage", "--type=merge", "-p", `{"spec":{"eventName":"renamed"}}`)
	if err == nil || !strings.Contains(out+err.Error(), "eventName is immutable") {
		t.Errorf("kubectl patch of eventName: %v %s", err, out)
	}
	k(t, "patch", "-n", ns, "meter/storage", "--type=merge", "-p", `{"spec":{"displayName":"Storage (GB)"}}`)
	k(t, "wait", "--for=jsonpath={.status.observedGeneration}=2", "--timeout=60s", "-n", ns, "meter/storage")
	k(t, "wait", ready, "--timeout=60s", "-n", ns, "meter/storage")
	if m := stripe(t, "GET", "/v1/billing/meters/"+id, nil); m["display_name"] != "Storage (GB)" {
		t.Errorf("renamed meter: %v", m)
	}
	k(t, "delete", "-n", ns, "meter/storage", "--timeout=60s")
	if m := stripe(t, "GET", "/v1/billing/meters/"+id, nil); m["status"] != "inactive" {
		t.Errorf("deleted Meter's Stripe meter: %v", m)
	}
}
