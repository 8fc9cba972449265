package stripesim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// newSim starts a simulator behind httptest with rate limiting off unless opts says otherwise.
func newSim(t *testing.T, opts Options) (*Sim, *httptest.Server) {
	t.Helper()
	if opts.TestRate == 0 && opts.LiveRate == 0 {
		opts.RateLimitOff = true
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	sim := New(opts)
	srv := httptest.NewServer(recordSuite(sim))
	t.Cleanup(srv.Close)
	return sim, srv
}

// stripeClient is a real stripe-go v76 client for url: no internal retries, no telemetry, no logs.
func stripeClient(url, key string) *client.API {
	return client.New(key, stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(url),
		MaxNetworkRetries: stripe.Int64(0),
		EnableTelemetry:   stripe.Bool(false),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
}

func newClient(t *testing.T, opts Options) (*Sim, *client.API) {
	t.Helper()
	sim, srv := newSim(t, opts)
	return sim, stripeClient(srv.URL, "sk_test_simulator")
}

// errInfo is what the tests read of a Stripe error beyond its status, type and code.
type errInfo struct{ Msg, Param string }

// stripeErr asserts err is a Stripe error with the given status, type and code ("" skips the code check).
func stripeErr(t *testing.T, err error, status int, typ stripe.ErrorType, code stripe.ErrorCode) errInfo {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("want a Stripe %d %s error, got %v", status, typ, err)
	}
	if se.HTTPStatusCode != status || se.Type != typ || (code != "" && se.Code != code) {
		t.Fatalf("want %d %s %s, got %d %s %s: %s", status, typ, code, se.HTTPStatusCode, se.Type, se.Code, se.Msg)
	}
	if !strings.HasPrefix(se.RequestID, "req_") {
		t.Errorf("error without a Request-Id: %+v", se)
	}
	return errInfo{Msg: se.Msg, Param: se.Param}
}

// must returns v, and panics (failing the test with a stack trace to the call) on an error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

// fixture creates a product and a monthly price.
func fixture(t *testing.T, sc *client.API, amount int64) (*stripe.Product, *stripe.Price) {
	t.Helper()
	prod := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("Pro")}))
	pr := must(sc.Prices.New(&stripe.PriceParams{
		Product: stripe.String(prod.ID), Currency: stripe.String("usd"), UnitAmount: stripe.Int64(amount),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")},
	}))
	return prod, pr
}

func TestCustomerLifecycle(t *testing.T) {
	_, sc := newClient(t, Options{})
	params := &stripe.CustomerParams{
		Email: stripe.String("a@example.com"), Name: stripe.String("Acme"),
		Address:       &stripe.AddressParams{Line1: stripe.String("1 Main St"), Country: stripe.String("US")},
		PaymentMethod: stripe.String("pm_card_visa"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
			DefaultPaymentMethod: stripe.String("pm_card_visa")},
	}
	params.AddMetadata("k8s_uid", "uid-1")
	params.AddMetadata("team", "billing")
	cus := must(sc.Customers.New(params))
	if !strings.HasPrefix(cus.ID, "cus_") || cus.Email != "a@example.com" || cus.Address.Country != "US" ||
		cus.Metadata["k8s_uid"] != "uid-1" || cus.InvoiceSettings.DefaultPaymentMethod.ID != "pm_card_visa" ||
		cus.Livemode || cus.Created == 0 {
		t.Fatalf("created customer: %+v", cus)
	}
	if cus.LastResponse.RequestID == "" {
		t.Error("no Request-Id header")
	}

	// An update changes what it sends; an empty metadata value removes the key.
	up := &stripe.CustomerParams{Name: stripe.String("Acme Inc")}
	up.AddMetadata("team", "")
	got := must(sc.Customers.Update(cus.ID, up))
	if got.Name != "Acme Inc" || got.Email != "a@example.com" || got.Metadata["team"] != "" ||
		got.Metadata["k8s_uid"] != "uid-1" {
		t.Fatalf("updated customer: %+v", got)
	}
	got = must(sc.Customers.Get(cus.ID, nil))
	if got.Name != "Acme Inc" {
		t.Errorf("get after update: name %q", got.Name)
	}

	// Deleting cancels its subscriptions and leaves it retrievable as deleted.
	_, pr := fixture(t, sc, 1000)
	sub := must(sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}}))
	del := must(sc.Customers.Del(cus.ID, nil))
	if !del.Deleted || del.ID != cus.ID {
		t.Fatalf("delete: %+v", del)
	}
	got = must(sc.Customers.Get(cus.ID, nil))
	if !got.Deleted {
		t.Errorf("a deleted customer must come back with deleted: true, got %+v", got)
	}
	if s := must(sc.Subscriptions.Get(sub.ID, nil)); s.Status != stripe.SubscriptionStatusCanceled {
		t.Errorf("subscription of a deleted customer is %s, want canceled", s.Status)
	}
	_, err := sc.Customers.Update(cus.ID, &stripe.CustomerParams{Name: stripe.String("x")})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	// Deleted customers are not listed.
	it := sc.Customers.List(&stripe.CustomerListParams{})
	for it.Next() {
		t.Errorf("listed deleted customer %s", it.Customer().ID)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
}

func TestUnknownIDsAre404(t *testing.T) {
	_, sc := newClient(t, Options{})
	for name, call := range map[string]func() error{
		"customer":     func() error { _, err := sc.Customers.Get("cus_missing", nil); return err },
		"product":      func() error { _, err := sc.Products.Get("prod_missing", nil); return err },
		"price":        func() error { _, err := sc.Prices.Get("price_missing", nil); return err },
		"subscription": func() error { _, err := sc.Subscriptions.Get("sub_missing", nil); return err },
		"invoice":      func() error { _, err := sc.Invoices.Get("in_missing", nil); return err },
		"price's product": func() error {
			_, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_missing"),
				Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1)})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			se := stripeErr(t, call(), 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
			if !strings.Contains(se.Msg, "No such") {
				t.Errorf("message %q", se.Msg)
			}
		})
	}
}

func TestProductRules(t *testing.T) {
	_, sc := newClient(t, Options{})
	prod, pr := fixture(t, sc, 1000)
	got := must(sc.Products.Update(prod.ID, &stripe.ProductParams{Description: stripe.String("d"),
		DefaultPrice: stripe.String(pr.ID), UnitLabel: stripe.String("seat")}))
	if got.Description != "d" || got.DefaultPrice.ID != pr.ID || got.UnitLabel != "seat" {
		t.Fatalf("updated product: %+v", got)
	}
	// A product with prices cannot be deleted; archive it instead.
	_, err := sc.Products.Del(prod.ID, nil)
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	if !strings.Contains(se.Msg, "cannot be deleted") {
		t.Errorf("message %q", se.Msg)
	}
	if a := must(sc.Products.Update(prod.ID, &stripe.ProductParams{Active: stripe.Bool(false)})); a.Active {
		t.Error("archive did not set active=false")
	}
	// One without prices can.
	empty := must(sc.Products.New(&stripe.ProductParams{Name: stripe.String("Empty")}))
	if d := must(sc.Products.Del(empty.ID, nil)); !d.Deleted {
		t.Errorf("delete: %+v", d)
	}
	_, err = sc.Products.Get(empty.ID, nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing)
	// Name is required.
	_, err = sc.Products.New(&stripe.ProductParams{})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterMissing)
}

func TestPriceRules(t *testing.T) {
	_, sc := newClient(t, Options{})
	prod, pr := fixture(t, sc, 1000)
	if pr.UnitAmount != 1000 || pr.Currency != "usd" || pr.Recurring.Interval != "month" ||
		pr.Recurring.IntervalCount != 1 || pr.Type != stripe.PriceTypeRecurring || pr.Product.ID != prod.ID {
		t.Fatalf("created price: %+v", pr)
	}

	t.Run("immutable fields are refused on update", func(t *testing.T) {
		for name, p := range map[string]*stripe.PriceParams{
			"unit_amount": {UnitAmount: stripe.Int64(2000)},
			"currency":    {Currency: stripe.String("eur")},
			"recurring":   {Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("year")}},
			"product":     {Product: stripe.String(prod.ID)},
		} {
			_, err := sc.Prices.Update(pr.ID, p)
			se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
			if se.Param != name || !strings.Contains(se.Msg, "unknown parameter") {
				t.Errorf("%s: param %q message %q", name, se.Param, se.Msg)
			}
		}
		if got := must(sc.Prices.Get(pr.ID, nil)); got.UnitAmount != 1000 {
			t.Errorf("a refused update changed the amount to %d", got.UnitAmount)
		}
	})

	t.Run("mutable fields update in place", func(t *testing.T) {
		got := must(sc.Prices.Update(pr.ID, &stripe.PriceParams{Nickname: stripe.String("monthly"),
			TaxBehavior: stripe.String("exclusive")}))
		if got.Nickname != "monthly" || got.TaxBehavior != "exclusive" {
			t.Fatalf("updated price: %+v", got)
		}
		_, err := sc.Prices.Update(pr.ID, &stripe.PriceParams{TaxBehavior: stripe.String("inclusive")})
		stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	})

	t.Run("lookup keys are unique and transferable", func(t *testing.T) {
		a := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID),
			Currency: stripe.String("usd"), UnitAmount: stripe.Int64(500), LookupKey: stripe.String("pro")}))
		_, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID),
			Currency: stripe.String("usd"), UnitAmount: stripe.Int64(600), LookupKey: stripe.String("pro")})
		stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		b := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID),
			Currency: stripe.String("usd"), UnitAmount: stripe.Int64(600), LookupKey: stripe.String("pro"),
			TransferLookupKey: stripe.Bool(true)}))
		if b.LookupKey != "pro" {
			t.Fatalf("transferred lookup key: %q", b.LookupKey)
		}
		if got := must(sc.Prices.Get(a.ID, nil)); got.LookupKey != "" {
			t.Errorf("the old price kept lookup key %q", got.LookupKey)
		}
		it := sc.Prices.List(&stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{"pro"})})
		var ids []string
		for it.Next() {
			ids = append(ids, it.Price().ID)
		}
		if len(ids) != 1 || ids[0] != b.ID {
			t.Errorf("list by lookup key: %v, want [%s]", ids, b.ID)
		}
	})

	t.Run("the product's default price cannot be archived", func(t *testing.T) {
		must(sc.Products.Update(prod.ID, &stripe.ProductParams{DefaultPrice: stripe.String(pr.ID)}))
		_, err := sc.Prices.Update(pr.ID, &stripe.PriceParams{Active: stripe.Bool(false)})
		se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
		if !strings.Contains(se.Msg, "default price") {
			t.Errorf("message %q", se.Msg)
		}
		other := must(sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID),
			Currency: stripe.String("usd"), UnitAmount: stripe.Int64(5)}))
		must(sc.Products.Update(prod.ID, &stripe.ProductParams{DefaultPrice: stripe.String(other.ID)}))
		if got := must(sc.Prices.Update(pr.ID, &stripe.PriceParams{Active: stripe.Bool(false)})); got.Active {
			t.Error("archive after repointing the default price did not take")
		}
	})

	t.Run("more than a year between bills is refused", func(t *testing.T) {
		_, err := sc.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
			UnitAmount: stripe.Int64(5), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month"),
				IntervalCount: stripe.Int64(13)}})
		stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	})
}

func TestSubscriptionLifecycle(t *testing.T) {
	_, sc := newClient(t, Options{})
	cus := must(sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("s@example.com"),
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String("pm_card_visa")}}))
	_, p1 := fixture(t, sc, 1000)
	_, p2 := fixture(t, sc, 2000)

	params := &stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(p1.ID), Quantity: stripe.Int64(2)}}}
	params.AddExpand("latest_invoice")
	params.AddExpand("customer")
	sub := must(sc.Subscriptions.New(params))
	if sub.Status != stripe.SubscriptionStatusActive || len(sub.Items.Data) != 1 ||
		sub.Items.Data[0].Price.ID != p1.ID || sub.Items.Data[0].Quantity != 2 || sub.Customer.Email != "s@example.com" ||
		sub.LatestInvoice == nil || sub.LatestInvoice.AmountDue != 2000 || sub.LatestInvoice.Status != "paid" {
		t.Fatalf("created subscription: %+v", sub)
	}
	if sub.CurrentPeriodEnd <= sub.CurrentPeriodStart {
		t.Errorf("period %d..%d", sub.CurrentPeriodStart, sub.CurrentPeriodEnd)
	}
	itemID := sub.Items.Data[0].ID

	// Items are changed by ID: a new price on the existing item, then a second item, then the first removed.
	got := must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		Items:             []*stripe.SubscriptionItemsParams{{ID: stripe.String(itemID), Price: stripe.String(p2.ID)}},
		ProrationBehavior: stripe.String("none")}))
	if len(got.Items.Data) != 1 || got.Items.Data[0].ID != itemID || got.Items.Data[0].Price.ID != p2.ID ||
		got.Items.Data[0].Quantity != 2 {
		t.Fatalf("item price change: %+v", got.Items.Data)
	}
	got = must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(p1.ID)},
			{ID: stripe.String(itemID), Deleted: stripe.Bool(true)}}}))
	if len(got.Items.Data) != 1 || got.Items.Data[0].Price.ID != p1.ID || got.Items.Data[0].ID == itemID {
		t.Fatalf("add and delete items: %+v", got.Items.Data)
	}
	// The same price twice is refused.
	_, err := sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(p1.ID)}}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")

	got = must(sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}))
	if !got.CancelAtPeriodEnd || got.CancelAt != got.CurrentPeriodEnd {
		t.Errorf("cancel_at_period_end: %v cancel_at %d", got.CancelAtPeriodEnd, got.CancelAt)
	}

	// Listing filters by customer, price and status; canceled ones only with status=canceled or all.
	count := func(p *stripe.SubscriptionListParams) int {
		n := 0
		it := sc.Subscriptions.List(p)
		for it.Next() {
			n++
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return n
	}
	if n := count(&stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}); n != 1 {
		t.Errorf("list by customer: %d", n)
	}
	if n := count(&stripe.SubscriptionListParams{Price: stripe.String(p2.ID)}); n != 0 {
		t.Errorf("list by a price no longer on it: %d", n)
	}

	canceled := must(sc.Subscriptions.Cancel(sub.ID, nil))
	if canceled.Status != stripe.SubscriptionStatusCanceled || canceled.CanceledAt == 0 {
		t.Fatalf("cancel: %+v", canceled)
	}
	if n := count(&stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}); n != 0 {
		t.Errorf("default list shows %d canceled subscriptions", n)
	}
	if n := count(&stripe.SubscriptionListParams{Status: stripe.String("canceled")}); n != 1 {
		t.Errorf("status=canceled lists %d", n)
	}
	_, err = sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(false)})
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	if !strings.Contains(se.Msg, "canceled subscription") {
		t.Errorf("message %q", se.Msg)
	}

	// A trial starts the subscription trialing with a free first invoice.
	trial := must(sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(p1.ID)}}, TrialPeriodDays: stripe.Int64(14)}))
	if trial.Status != stripe.SubscriptionStatusTrialing || trial.TrialEnd-trial.TrialStart != 14*86400 {
		t.Errorf("trial: %s %d..%d", trial.Status, trial.TrialStart, trial.TrialEnd)
	}
	// days_until_due only with send_invoice.
	_, err = sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(p1.ID)}}, DaysUntilDue: stripe.Int64(30)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
}

func TestMetadataLimits(t *testing.T) {
	_, sc := newClient(t, Options{})
	for name, md := range map[string]map[string]string{
		"51 keys":           manyKeys(51),
		"41-character key":  {strings.Repeat("k", 41): "v"},
		"501-character val": {"k": strings.Repeat("v", 501)},
		"bracket in key":    {"a[b": "v"},
	} {
		t.Run(name, func(t *testing.T) {
			p := &stripe.CustomerParams{}
			for k, v := range md {
				p.AddMetadata(k, v)
			}
			_, err := sc.Customers.New(p)
			se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
			if !strings.HasPrefix(se.Param, "metadata") {
				t.Errorf("param %q", se.Param)
			}
		})
	}
	p := &stripe.CustomerParams{}
	for k, v := range manyKeys(50) {
		p.AddMetadata(k, v)
	}
	must(sc.Customers.New(p))
}

func manyKeys(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestListPaginationAndCreatedFilter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, sc := newClient(t, Options{Now: clock})
	ids := make([]string, 0, 7)
	for i := range 7 {
		mu.Lock()
		now = now.Add(time.Duration(i%2) * time.Second) // several customers share a second
		mu.Unlock()
		ids = append(ids, must(sc.Customers.New(&stripe.CustomerParams{})).ID)
	}
	// Auto-pagination with a page size of 2 walks every customer, newest first.
	p := &stripe.CustomerListParams{}
	p.Limit = stripe.Int64(2)
	it := sc.Customers.List(p)
	var got []string
	for it.Next() {
		got = append(got, it.Customer().ID)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paginated list\n got %v\nwant %v", got, want)
	}
	// ending_before pages backwards: the page just newer than the cursor.
	bp := &stripe.CustomerListParams{}
	bp.EndingBefore = stripe.String(want[3])
	bp.Limit = stripe.Int64(2)
	bp.Single = true
	page := sc.Customers.List(bp).CustomerList()
	if page == nil || len(page.Data) != 2 || page.Data[0].ID != want[1] || page.Data[1].ID != want[2] ||
		!page.HasMore {
		t.Errorf("ending_before page: %+v", page)
	}
	// created[gte] keeps the customers created since a time: a strongly consistent list for recovery.
	first := must(sc.Customers.Get(ids[5], nil)).Created
	lp := &stripe.CustomerListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: first}}
	it = sc.Customers.List(lp)
	n := 0
	for it.Next() {
		if it.Customer().Created < first {
			t.Errorf("created filter let through %d < %d", it.Customer().Created, first)
		}
		n++
	}
	if n < 2 || n >= 7 {
		t.Errorf("created[gte] listed %d customers", n)
	}
}

func TestSearchByMetadata(t *testing.T) {
	_, sc := newClient(t, Options{})
	for _, uid := range []string{"u1", "u2", "u2"} {
		p := &stripe.CustomerParams{Email: stripe.String(uid + "@example.com")}
		p.AddMetadata("k8s_uid", uid)
		must(sc.Customers.New(p))
	}
	it := sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{
		Query: "metadata['k8s_uid']:'u2'"}})
	n := 0
	for it.Next() {
		if it.Customer().Metadata["k8s_uid"] != "u2" {
			t.Errorf("search returned %+v", it.Customer())
		}
		n++
	}
	if it.Err() != nil || n != 2 {
		t.Fatalf("search found %d, err %v", n, it.Err())
	}
	it = sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{
		Query: "email:'u1@example.com' AND metadata['k8s_uid']:'u1'"}})
	n = 0
	for it.Next() {
		n++
	}
	if n != 1 {
		t.Errorf("compound search found %d", n)
	}
	it = sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{Query: "bogus:'x'"}})
	it.Next()
	stripeErr(t, it.Err(), 400, stripe.ErrorTypeInvalidRequest, "")
}

func TestUnknownParameterIsRefused(t *testing.T) {
	_, sc := newClient(t, Options{})
	p := &stripe.CustomerParams{}
	p.AddExtra("favourite_colour", "blue")
	_, err := sc.Customers.New(p)
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "")
	if se.Param != "favourite_colour" {
		t.Errorf("param %q", se.Param)
	}
}

func TestPersistence(t *testing.T) {
	sim, sc := newClient(t, Options{})
	cus := must(sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("p@example.com")}))
	path := filepath.Join(t.TempDir(), "state.json")
	if err := sim.Save(path); err != nil {
		t.Fatal(err)
	}
	sim2, srv2 := newSim(t, Options{})
	if err := sim2.Load(path); err != nil {
		t.Fatal(err)
	}
	got := must(stripeClient(srv2.URL, "sk_test_x").Customers.Get(cus.ID, nil))
	if got.Email != "p@example.com" {
		t.Errorf("loaded customer: %+v", got)
	}
}

// rawRequest sends a request with a chosen key, for the cases stripe-go cannot express, and returns the status
// and headers.
func rawRequest(t *testing.T, method, url, key string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header
}
