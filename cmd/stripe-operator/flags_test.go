package main

import (
	"flag"
	"testing"
)

// The endpoint the operator registers lacks the entitlement summary events, so with --webhook-public-url a
// Customer's entitlements are read, unless the flag says otherwise.
func TestEntitlementSummariesDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--webhook-public-url", "https://ops.example/webhooks/stripe"}, false},
		{[]string{"--webhook-public-url", "https://ops.example/webhooks/stripe", "--entitlement-summary-events=true"}, true},
		{[]string{"--entitlement-summary-events=false"}, false},
	} {
		var o options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.bindFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o.defaultEntitlementSummaries(fs)
		if o.entitlementSummaries != tc.want {
			t.Errorf("%v: summary events %v, want %v", tc.args, o.entitlementSummaries, tc.want)
		}
	}
}
