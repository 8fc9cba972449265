package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
)

// world is what the API server holds.
type world struct {
	customers     []billingv1.Customer
	subscriptions []billingv1.Subscription
	products      []billingv1.Product
	prices        []billingv1.Price
	coupons       []billingv1.Coupon
	promos        []billingv1.PromotionCode
	taxRates      []billingv1.TaxRate
	events        []billingv1.StripeEvent
}

func (s *suite) readWorld(ctx context.Context) (*world, error) {
	w := &world{}
	cl, sl, pl, prl, el := &billingv1.CustomerList{}, &billingv1.SubscriptionList{}, &billingv1.ProductList{},
		&billingv1.PriceList{}, &billingv1.StripeEventList{}
	col, pcl, tl := &billingv1.CouponList{}, &billingv1.PromotionCodeList{}, &billingv1.TaxRateList{}
	for _, l := range []client.ObjectList{cl, sl, pl, prl, col, pcl, tl} {
		if err := s.c.List(ctx, l, client.InNamespace(tenantNS)); err != nil {
			return nil, err
		}
	}
	if err := s.c.List(ctx, el, client.InNamespace(operatorNS)); err != nil {
		return nil, err
	}
	w.customers, w.subscriptions, w.products, w.prices, w.events = cl.Items, sl.Items, pl.Items, prl.Items, el.Items
	w.coupons, w.promos, w.taxRates = col.Items, pcl.Items, tl.Items
	return w, nil
}

// all returns every billing object.
func (w *world) all() []billingv1.StripeObject {
	out := make([]billingv1.StripeObject, 0, len(w.customers)+len(w.subscriptions)+len(w.products)+len(w.prices))
	for i := range w.customers {
		out = append(out, &w.customers[i])
	}
	for i := range w.subscriptions {
		out = append(out, &w.subscriptions[i])
	}
	for i := range w.products {
		out = append(out, &w.products[i])
	}
	for i := range w.prices {
		out = append(out, &w.prices[i])
	}
	for i := range w.coupons {
		out = append(out, &w.coupons[i])
	}
	for i := range w.promos {
		out = append(out, &w.promos[i])
	}
	for i := range w.taxRates {
		out = append(out, &w.taxRates[i])
	}
	return out
}

func (w *world) ready() int {
	n := 0
	for _, o := range w.all() {
		if meta.IsStatusConditionTrue(o.GetStripeStatus().Conditions, billingv1.ConditionReady) {
			n++
		}
	}
	return n
}

func kindOf(o billingv1.StripeObject) string {
	switch o.(type) {
	case *billingv1.Customer:
		return "Customer"
	case *billingv1.Subscription:
		return "Subscription"
	case *billingv1.Product:
		return "Product"
	case *billingv1.Coupon:
		return "Coupon"
	case *billingv1.PromotionCode:
		return "PromotionCode"
	case *billingv1.TaxRate:
		return "TaxRate"
	default:
		return "Price"
	}
}

// simKind is the simulator's name of a billing kind (in ObjectsByUID, and data.object.object).
var simKind = map[string]string{"Customer": "customer", "Subscription": "subscription", "Product": "product",
	"Price": "price", "Coupon": "coupon", "PromotionCode": "promotion_code", "TaxRate": "tax_rate"}

// stripeObject is what the checks read of a Stripe object.
type stripeObject struct {
	kind     string
	id       string
	metadata map[string]string
	sub      *stripego.Subscription
	// redeemed is a coupon's or promotion code's times_redeemed.
	redeemed int64
}

// listStripe lists every object of the four kinds in the simulator, through its API.
func listStripe(api *stripeclient.API) (map[string]stripeObject, error) {
	out := map[string]stripeObject{}
	lp := func() stripego.ListParams { return stripego.ListParams{Limit: stripego.Int64(100)} }
	cus := api.Customers.List(&stripego.CustomerListParams{ListParams: lp()})
	for cus.Next() {
		c := cus.Customer()
		out[c.ID] = stripeObject{kind: "customer", id: c.ID, metadata: c.Metadata}
	}
	subs := api.Subscriptions.List(&stripego.SubscriptionListParams{ListParams: lp(), Status: stripego.String("all")})
	for subs.Next() {
		sub := subs.Subscription()
		out[sub.ID] = stripeObject{kind: "subscription", id: sub.ID, metadata: sub.Metadata, sub: sub}
	}
	prods := api.Products.List(&stripego.ProductListParams{ListParams: lp()})
	for prods.Next() {
		p := prods.Product()
		out[p.ID] = stripeObject{kind: "product", id: p.ID, metadata: p.Metadata}
	}
	prices := api.Prices.List(&stripego.PriceListParams{ListParams: lp()})
	for prices.Next() {
		p := prices.Price()
		out[p.ID] = stripeObject{kind: "price", id: p.ID, metadata: p.Metadata}
	}
	coupons := api.Coupons.List(&stripego.CouponListParams{ListParams: lp()})
	for coupons.Next() {
		c := coupons.Coupon()
		out[c.ID] = stripeObject{kind: "coupon", id: c.ID, metadata: c.Metadata, redeemed: c.TimesRedeemed}
	}
	promos := api.PromotionCodes.List(&stripego.PromotionCodeListParams{ListParams: lp()})
	for promos.Next() {
		p := promos.PromotionCode()
		out[p.ID] = stripeObject{kind: "promotion_code", id: p.ID, metadata: p.Metadata, redeemed: p.TimesRedeemed}
	}
	rates := api.TaxRates.List(&stripego.TaxRateListParams{ListParams: lp()})
	for rates.Next() {
		r := rates.TaxRate()
		out[r.ID] = stripeObject{kind: "tax_rate", id: r.ID, metadata: r.Metadata}
	}
	for _, err := range []error{cus.Err(), subs.Err(), prods.Err(), prices.Err(), coupons.Err(), promos.Err(),
		rates.Err()} {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// report collects findings: counts for the log, problems for the verdict (a few examples of each kind).
type report struct {
	mu       sync.Mutex
	problems map[string][]string
	counts   []string
}

func (r *report) problem(kind, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.problems == nil {
		r.problems = map[string][]string{}
	}
	r.problems[kind] = append(r.problems[kind], fmt.Sprintf(format, args...))
}

func (r *report) count(format string, args ...any) {
	r.counts = append(r.counts, fmt.Sprintf(format, args...))
}

// verify checks the converged world against the simulator and prints the counts.
func (s *suite) verify(ctx context.Context, converged, total time.Duration) {
	t := s.t
	t.Helper()
	// From here on the suite reads Stripe: no more faults, no rate limit. The operator stays up and must stay idle.
	faultsFired := s.sim.Faults()
	s.sim.ClearFaults()
	s.sim.SetRateLimits(0, 0, true)
	stats := s.sim.Stats()
	deliveries := s.sim.Deliveries()
	scheduled := s.sim.ScheduledEvents()

	w, err := s.readWorld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := stripeclient.New(apiKey, stripego.NewBackendsWithConfig(&stripego.BackendConfig{
		URL: stripego.String(s.simURL), MaxNetworkRetries: stripego.Int64(0), EnableTelemetry: stripego.Bool(false),
		LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull}}))
	inStripe, err := listStripe(api)
	if err != nil {
		t.Fatal(err)
	}
	r := &report{}
	byID := s.checkObjects(w, inStripe, r)
	s.checkSubscriptions(ctx, api, w, inStripe, r)
	s.checkEvents(w, byID, scheduled, deliveries, r)
	s.checkChaos(faultsFired, stats, r)

	// The counts.
	calls, byStatus := int64(0), map[string]int64{}
	for _, m := range stats {
		for status, n := range m {
			calls += n
			byStatus[status] += n
		}
	}
	statuses := make([]string, 0, len(byStatus))
	for st, n := range byStatus {
		statuses = append(statuses, fmt.Sprintf("%s:%d", st, n))
	}
	sort.Strings(statuses)
	opStarts, opKills, _ := s.operator.counts()
	rcvStarts, rcvKills, _ := s.receiver.counts()
	t.Logf("chaos: ==== summary (N=%d, seed %d) ====", s.cfg.n, s.cfg.seed)
	t.Logf("chaos: objects: %d Customers, %d Subscriptions, %d Products, %d Prices, %d Coupons, %d PromotionCodes; "+
		"%d Ready; %d Stripe objects", len(w.customers), len(w.subscriptions), len(w.products), len(w.prices),
		len(w.coupons), len(w.promos), w.ready(), len(inStripe))
	t.Logf("chaos: Stripe calls: %d (%.2f per object) by status %s", calls,
		float64(calls)/float64(max(len(w.all()), 1)), strings.Join(statuses, " "))
	patterns := make([]string, 0, len(stats))
	for pattern := range stats {
		patterns = append(patterns, pattern)
	}
	sort.Strings(patterns)
	for _, pattern := range patterns {
		codes := make([]string, 0, len(stats[pattern]))
		for st, n := range stats[pattern] {
			codes = append(codes, fmt.Sprintf("%s:%d", st, n))
		}
		sort.Strings(codes)
		t.Logf("chaos:   %-40s %s", pattern, strings.Join(codes, " "))
	}
	for _, f := range faultsFired {
		what := f.Kind
		switch f.Kind {
		case stripesim.FaultError:
			what = fmt.Sprintf("error %d %s", f.Status, f.Code)
		case stripesim.FaultLatency:
			what = fmt.Sprintf("latency %d ms", f.LatencyMS)
		}
		t.Logf("chaos: faults injected: %-22s rate %.2f on %s %s: %d", what, f.Rate, orAny(f.Method), f.Path, f.Fired)
	}
	t.Logf("chaos: kills: operator %d (%d starts), receiver %d (%d starts), receiver down %s", opKills, opStarts,
		rcvKills, rcvStarts, s.downWindows())
	for _, c := range r.counts {
		t.Logf("chaos: %s", c)
	}
	t.Logf("chaos: converged in %v after the load; whole run %v", converged.Round(time.Millisecond),
		total.Round(time.Millisecond))

	kinds := make([]string, 0, len(r.problems))
	for k := range r.problems {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		ex := r.problems[k]
		t.Errorf("%s: %d, for example:\n  %s", k, len(ex), strings.Join(ex[:min(len(ex), 5)], "\n  "))
	}
}

func orAny(m string) string {
	if m == "" {
		return "*"
	}
	return m
}

func (s *suite) downWindows() string {
	parts := make([]string, 0, len(s.receiverDown))
	for _, d := range s.receiverDown {
		parts = append(parts, fmt.Sprintf("%.1fs", d.to.Sub(d.from).Seconds()))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// checkObjects: every object Ready with no create pending, exactly one Stripe object per CR (by the metadata stamp),
// status.id naming it, and no Stripe object that no CR accounts for. It returns the CRs by Stripe ID.
func (s *suite) checkObjects(w *world, inStripe map[string]stripeObject,
	r *report) map[string]billingv1.StripeObject {
	want := map[string]int{"Customer": s.cfg.n, "Subscription": s.cfg.n, "Product": 1, "Price": 1,
		"Coupon": s.coupons(), "PromotionCode": 1, "TaxRate": 1}
	got := map[string]int{}
	byUID := map[string]billingv1.StripeObject{}
	byID := map[string]billingv1.StripeObject{}
	for _, o := range w.all() {
		kind := kindOf(o)
		got[kind]++
		byUID[string(o.GetUID())] = o
		st := o.GetStripeStatus()
		if c := meta.FindStatusCondition(st.Conditions, billingv1.ConditionReady); c == nil ||
			c.Status != metav1.ConditionTrue {
			r.problem("objects not Ready", "%s %s: %+v", kind, o.GetName(), c)
		}
		if p := controllers.PendingCreate(o); p != nil {
			r.problem("objects with a pending create left", "%s %s: %+v", kind, o.GetName(), *p)
		}
		if st.ID == "" {
			continue
		}
		byID[st.ID] = o
		so, ok := inStripe[st.ID]
		switch {
		case !ok:
			r.problem("status.id naming no Stripe object", "%s %s: %s", kind, o.GetName(), st.ID)
		case so.kind != simKind[kind] || so.metadata[billingv1.MetadataUID] != string(o.GetUID()) ||
			so.metadata[billingv1.MetadataName] != o.GetName() ||
			so.metadata[billingv1.MetadataNamespace] != o.GetNamespace() ||
			so.metadata[billingv1.MetadataKind] != kind || so.metadata[billingv1.MetadataCluster] != cluster:
			r.problem("status.id naming another object", "%s %s: %s has metadata %v", kind, o.GetName(), st.ID,
				so.metadata)
		}
	}
	for kind, n := range want {
		if got[kind] != n {
			r.problem("missing objects", "%d %ss in the cluster, want %d", got[kind], kind, n)
		}
	}
	// Stripe's side: one object per CR, none left over.
	perUID := map[string][]string{}
	for _, so := range inStripe {
		uid := so.metadata[billingv1.MetadataUID]
		o, ok := byUID[uid]
		if !ok || simKind[kindOf(o)] != so.kind {
			r.problem("orphan Stripe objects", "%s %s (k8s_uid %q, k8s_name %q)", so.kind, so.id, uid,
				so.metadata[billingv1.MetadataName])
			continue
		}
		perUID[uid] = append(perUID[uid], so.id)
	}
	dups := 0
	for uid, o := range byUID {
		ids := perUID[uid]
		switch {
		case len(ids) == 0:
			r.problem("CRs without a Stripe object", "%s %s", kindOf(o), o.GetName())
		case len(ids) > 1:
			dups += len(ids) - 1
			r.problem("duplicate Stripe objects", "%s %s: %v (status.id %s)", kindOf(o), o.GetName(), ids,
				o.GetStripeStatus().ID)
		}
	}
	// The simulator's own count, deleted and canceled objects included.
	simDups := 0
	for kind, m := range s.sim.ObjectsByUID() {
		for uid, n := range m {
			if n > 1 {
				simDups += n - 1
				r.problem("duplicate Stripe objects (simulator count)", "%s k8s_uid %s: %d", kind, uid, n)
			}
		}
	}
	r.count("Stripe objects: %d customers, %d subscriptions, %d products, %d prices, %d coupons, %d promotion "+
		"codes; duplicates found %d (simulator count %d), orphans %d", countKind(inStripe, "customer"),
		countKind(inStripe, "subscription"), countKind(inStripe, "product"), countKind(inStripe, "price"),
		countKind(inStripe, "coupon"), countKind(inStripe, "promotion_code"), dups, simDups,
		len(r.problems["orphan Stripe objects"]))
	return byID
}

func countKind(m map[string]stripeObject, kind string) int {
	n := 0
	for _, so := range m {
		if so.kind == kind {
			n++
		}
	}
	return n
}

// checkSubscriptions: each Subscription's status equals the simulator's object: Stripe status (active: the card
// pays), customer, items, current period, latest invoice and its status, and PaymentFailed False.
func (s *suite) checkSubscriptions(ctx context.Context, api *stripeclient.API, w *world,
	inStripe map[string]stripeObject, r *report) {
	customerIDs := map[string]string{}
	for _, c := range w.customers {
		customerIDs[c.Name] = c.Status.ID
	}
	priceID, taxRateID := "", ""
	for _, p := range w.prices {
		priceID = p.Status.ID
	}
	for _, r := range w.taxRates {
		taxRateID = r.Status.ID
	}
	invoices := s.invoiceStatuses(ctx, api, w, r)
	discountIDs := map[string]string{} // spec.discount's reference -> the identity Stripe shows
	for _, c := range w.coupons {
		discountIDs["coupon/"+c.Name] = "coupon " + c.Status.ID
	}
	for _, p := range w.promos {
		discountIDs["promo/"+p.Name] = "promotion_code " + p.Status.ID
	}
	redemptions := map[string]int64{} // Stripe ID of a coupon or promotion code -> subscriptions redeeming it
	active := 0
	for i := range w.subscriptions {
		sub := &w.subscriptions[i]
		st := &sub.Status
		so, ok := inStripe[st.ID]
		if !ok || so.sub == nil {
			continue // reported by checkObjects
		}
		ss := so.sub
		var diffs []string
		diff := func(field string, cr, stripe any) {
			if fmt.Sprint(cr) != fmt.Sprint(stripe) {
				diffs = append(diffs, fmt.Sprintf("%s %v, Stripe %v", field, cr, stripe))
			}
		}
		diff("stripeStatus", st.StripeState, ss.Status)
		diff("customerID", st.CustomerID, ss.Customer.ID)
		diff("customer of customerRef", customerIDs[sub.Spec.CustomerRef.Name], ss.Customer.ID)
		diff("currentPeriodStart", unix(st.CurrentPeriodStart), ss.CurrentPeriodStart)
		diff("currentPeriodEnd", unix(st.CurrentPeriodEnd), ss.CurrentPeriodEnd)
		diff("cancelAtPeriodEnd", st.CancelAtPeriodEnd, ss.CancelAtPeriodEnd)
		var crItems, stripeItems []string
		for _, it := range st.Items {
			crItems = append(crItems, fmt.Sprintf("%s/%s/%d", it.ID, it.PriceID, it.Quantity))
		}
		if ss.Items != nil {
			for _, it := range ss.Items.Data {
				stripeItems = append(stripeItems, fmt.Sprintf("%s/%s/%d", it.ID, it.Price.ID, it.Quantity))
			}
		}
		diff("items", crItems, stripeItems)
		diff("item price", fmt.Sprint([]string{priceID}), fmt.Sprint(itemPrices(ss)))
		var stripeRates []string
		for _, r := range ss.DefaultTaxRates {
			stripeRates = append(stripeRates, r.ID)
		}
		diff("defaultTaxRateIDs", st.DefaultTaxRateIDs, stripeRates)
		diff("default tax rate", []string{taxRateID}, stripeRates)
		var crInvoice, crInvoiceStatus string
		if st.LatestInvoice != nil {
			crInvoice, crInvoiceStatus = st.LatestInvoice.ID, st.LatestInvoice.Status
		}
		stripeInvoice := ""
		if ss.LatestInvoice != nil {
			stripeInvoice = ss.LatestInvoice.ID
		}
		diff("discount", wantDiscount(sub, discountIDs), stripeDiscount(ss, redemptions))
		diff("latestInvoice.id", crInvoice, stripeInvoice)
		diff("latestInvoice.status", crInvoiceStatus, invoices[stripeInvoice])
		if c := meta.FindStatusCondition(st.Conditions, billingv1.ConditionPaymentFailed); c == nil ||
			c.Status != metav1.ConditionFalse || c.Reason != billingv1.ReasonPaymentSucceeded {
			diffs = append(diffs, fmt.Sprintf("PaymentFailed %+v, want False/PaymentSucceeded (invoice paid)", c))
		}
		if ss.Status == stripego.SubscriptionStatusActive {
			active++
		}
		if len(diffs) > 0 {
			r.problem("Subscription statuses differing from the simulator", "%s (%s): %s", sub.Name, st.ID,
				strings.Join(diffs, "; "))
		}
	}
	// Each subscription redeemed its coupon or promotion code once, whatever the faults, kills and retries.
	for _, so := range inStripe {
		if (so.kind == "coupon" || so.kind == "promotion_code") && so.redeemed != redemptions[so.id] {
			r.problem("redemptions not counted once per subscription", "%s %s: times_redeemed %d, %d "+
				"subscriptions redeem it", so.kind, so.id, so.redeemed, redemptions[so.id])
		}
	}
	if active != len(w.subscriptions) {
		r.problem("subscriptions not active in Stripe", "%d of %d active (every customer pays with pm_card_visa)",
			active, len(w.subscriptions))
	}
	r.count("subscriptions: %d active in Stripe, %d statuses differing from the simulator", active,
		len(r.problems["Subscription statuses differing from the simulator"]))
}

// wantDiscount is the discount a Subscription's spec asks for, as stripeDiscount names it ("" for none); ids maps
// "coupon/<name>" and "promo/<name>" to the Stripe IDs of the Coupons and PromotionCodes.
func wantDiscount(sub *billingv1.Subscription, ids map[string]string) string {
	switch d := sub.Spec.Discount; {
	case d != nil && d.CouponRef != nil:
		return ids["coupon/"+d.CouponRef.Name]
	case d != nil && d.PromotionCodeRef != nil:
		return ids["promo/"+d.PromotionCodeRef.Name]
	}
	return ""
}

// stripeDiscount names the discount of a Stripe subscription ("coupon <id>", "promotion_code <id>" or ""), and
// counts its redemption of the coupon and the promotion code.
func stripeDiscount(ss *stripego.Subscription, redemptions map[string]int64) string {
	switch d := ss.Discount; {
	case d != nil && d.PromotionCode != nil:
		redemptions[d.PromotionCode.ID]++
		redemptions[d.Coupon.ID]++
		return "promotion_code " + d.PromotionCode.ID
	case d != nil && d.Coupon != nil:
		redemptions[d.Coupon.ID]++
		return "coupon " + d.Coupon.ID
	}
	return ""
}

func unix(t *metav1.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

func itemPrices(s *stripego.Subscription) []string {
	var out []string
	if s.Items != nil {
		for _, it := range s.Items.Data {
			out = append(out, it.Price.ID)
		}
	}
	return out
}

// invoiceStatuses reads the latest invoice of every subscription from the simulator.
func (s *suite) invoiceStatuses(ctx context.Context, api *stripeclient.API, w *world, r *report) map[string]string {
	ids := make(chan string)
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				p := &stripego.InvoiceParams{}
				p.Context = ctx
				in, err := api.Invoices.Get(id, p)
				mu.Lock()
				if err != nil {
					r.problem("invoices unreadable", "%s: %v", id, err)
				} else {
					out[id] = string(in.Status)
				}
				mu.Unlock()
			}
		}()
	}
	for _, sub := range w.subscriptions {
		if sub.Status.LatestInvoice != nil && sub.Status.LatestInvoice.ID != "" {
			ids <- sub.Status.LatestInvoice.ID
		}
	}
	close(ids)
	wg.Wait()
	return out
}

// eventObject is what the checks read of a stored event's data.object.
type eventObject struct {
	Data struct {
		Object struct {
			ID           string `json:"id"`
			Object       string `json:"object"`
			Subscription string `json:"subscription"`
		} `json:"object"`
	} `json:"data"`
}

// checkEvents: every event the simulator owed the endpoint was delivered, is stored in exactly one StripeEvent, and
// was processed (none Pending, Unroutable or Failed), routed to the billing object it concerns, and as the
// operator's own change (none mistaken for drift); no StripeEvent exists for an event the simulator did not send;
// and each object's status.lastEventID/lastEventCreated names one of its own events, none newer than its newest.
func (s *suite) checkEvents(w *world, byID map[string]billingv1.StripeObject, scheduled []stripesim.ScheduledEvent,
	deliveries []stripesim.Delivery, r *report) {
	owed := map[string]stripesim.ScheduledEvent{}
	endpoints := map[string]bool{}
	copies := 0
	for _, e := range scheduled {
		if _, dup := owed[e.EventID]; dup {
			r.problem("events scheduled for several endpoints", "%s %s", e.EventID, e.EventType)
		}
		owed[e.EventID] = e
		endpoints[e.EndpointID] = true
		copies += e.Copies
	}
	if len(endpoints) != 1 {
		r.problem("webhook endpoints receiving events", "%d endpoints: %v (want the one the operator registered)",
			len(endpoints), endpoints)
	}
	s.checkDeliveries(owed, copies, deliveries, r)
	newest := checkStored(w, byID, owed, r)
	// An event that changes nothing is not written, so lastEventID names the newest event that changed the status:
	// one of the object's own events, never newer than the newest routed to it. (That the status equals Stripe's is
	// checked against the simulator.)
	for _, o := range w.all() {
		key := kindOf(o) + "/" + o.GetName()
		n := newest[key]
		st := o.GetStripeStatus()
		if n == nil {
			// No event is owed for it (the operator does not register for the creations of what it creates):
			// its status names none.
			if st.LastEventID != "" {
				r.problem("objects whose status names an event although none was routed to them", "%s: %s", key,
					st.LastEventID)
			}
			continue
		}
		if created, ok := n.all[st.LastEventID]; st.LastEventID != "" && (!ok || created != st.LastEventCreated) ||
			st.LastEventCreated > n.created {
			r.problem("objects whose status names an event not theirs, or newer than their newest", "%s: "+
				"lastEventID %s created %d, newest %v created %d", key, st.LastEventID, st.LastEventCreated, n.ids,
				n.created)
		}
	}
}

// checkDeliveries: each owed event was delivered (answered 2xx) at least once; the receiver's downtime made
// attempts fail, and duplicates were delivered.
func (s *suite) checkDeliveries(owed map[string]stripesim.ScheduledEvent, copies int,
	deliveries []stripesim.Delivery, r *report) {
	ok2xx, failed, redeliveries := map[string]int{}, 0, 0
	for _, d := range deliveries {
		if d.Status >= 200 && d.Status < 300 {
			ok2xx[d.EventID]++
		} else {
			failed++
		}
		if d.Attempt > 1 {
			redeliveries++
		}
	}
	dupDelivered := 0
	for id, e := range owed {
		switch n := ok2xx[id]; {
		case n == 0:
			r.problem("events never delivered", "%s %s", id, e.EventType)
		case n > 1:
			dupDelivered++
		}
	}
	r.count("deliveries: %d attempts, %d failed (receiver down, retried), %d retries; events sent twice %d, "+
		"delivered more than once %d", len(deliveries), failed, redeliveries, copies-len(owed), dupDelivered)
	if failed == 0 && len(owed) >= 100 {
		r.problem("receiver kills without effect", "no delivery attempt failed, though the receiver was down %s",
			s.downWindows())
	}
	if dupDelivered == 0 && len(owed) >= 20 {
		r.problem("no event delivered twice", "%d events with 30%% duplicated", len(owed))
	}
}

// newestEvents are the newest events (by created, ties kept) routed to one object.
type newestEvents struct {
	created int64
	ids     []string
	// all are the creation times of every event routed to the object, by ID.
	all map[string]int64
}

// checkStored checks the StripeEvents against what was owed and returns the newest events by target.
func checkStored(w *world, byID map[string]billingv1.StripeObject, owed map[string]stripesim.ScheduledEvent,
	r *report) map[string]*newestEvents {
	stored := map[string]int{}
	phases := map[billingv1.StripeEventPhase]int{}
	byType := map[string]int{}
	newest := map[string]*newestEvents{}
	for i := range w.events {
		e := &w.events[i]
		stored[e.Spec.EventID]++
		phases[e.Status.Phase]++
		byType[e.Spec.Type]++
		if _, ok := owed[e.Spec.EventID]; !ok {
			r.problem("StripeEvents for events the simulator did not send", "%s %s (%s)", e.Name, e.Spec.EventID,
				e.Spec.Type)
		}
		if e.Status.Phase != billingv1.EventProcessed {
			r.problem("events not Processed", "%s %s: %s %q after %d attempts", e.Spec.EventID, e.Spec.Type,
				e.Status.Phase, e.Status.Message, e.Status.Attempts)
			continue
		}
		if strings.Contains(e.Status.Message, "outside the operator") {
			r.problem("events of the operator's own changes taken for drift", "%s %s: %s", e.Spec.EventID,
				e.Spec.Type, e.Status.Message)
		}
		tgt, ok := checkTarget(e, byID, r)
		if !ok {
			continue
		}
		key := tgt.Kind + "/" + tgt.Name
		n := newest[key]
		if n == nil {
			n = &newestEvents{all: map[string]int64{}}
			newest[key] = n
		}
		n.all[e.Spec.EventID] = e.Spec.Created
		switch {
		case e.Spec.Created > n.created:
			n.created, n.ids = e.Spec.Created, []string{e.Spec.EventID}
		case e.Spec.Created == n.created:
			n.ids = append(n.ids, e.Spec.EventID)
		}
	}
	dupStored := 0
	for id, e := range owed {
		switch n := stored[id]; {
		case n == 0:
			r.problem("events lost (no StripeEvent)", "%s %s", id, e.EventType)
		case n > 1:
			dupStored += n - 1
			r.problem("events stored more than once", "%s %s: %d StripeEvents", id, e.EventType, n)
		}
	}
	types := make([]string, 0, len(byType))
	for typ, n := range byType {
		types = append(types, fmt.Sprintf("%s:%d", typ, n))
	}
	sort.Strings(types)
	r.count("events: %d owed to the endpoint, %d StripeEvents stored, duplicates found %d, lost %d; by phase %v",
		len(owed), len(w.events), dupStored, len(r.problems["events lost (no StripeEvent)"]), phases)
	r.count("events by type: %s", strings.Join(types, " "))
	return newest
}

// checkTarget checks that a processed event was routed to the billing object it concerns, found through the Stripe
// IDs checkObjects verified (an invoice's and a discount's through its subscription).
func checkTarget(e *billingv1.StripeEvent, byID map[string]billingv1.StripeObject,
	r *report) (*billingv1.EventTarget, bool) {
	var obj eventObject
	if err := json.Unmarshal([]byte(e.Spec.Payload), &obj); err != nil {
		r.problem("StripeEvents with an unreadable payload", "%s: %v", e.Spec.EventID, err)
		return nil, false
	}
	id := obj.Data.Object.ID
	if obj.Data.Object.Object == "invoice" || obj.Data.Object.Object == "discount" {
		id = obj.Data.Object.Subscription
	}
	want := byID[id]
	tgt := e.Status.Target
	if want == nil || tgt == nil || tgt.Kind != kindOf(want) || tgt.Name != want.GetName() ||
		tgt.Namespace != want.GetNamespace() {
		r.problem("events routed to the wrong object", "%s %s about %s: target %+v", e.Spec.EventID,
			e.Spec.Type, id, tgt)
		return nil, false
	}
	return tgt, true
}

// checkChaos: the chaos happened. Every kill was made, no process died on its own, and each fault fired (when the
// run made enough requests to expect it to).
func (s *suite) checkChaos(fired []stripesim.Fault, stats map[string]map[string]int64, r *report) {
	for _, p := range []*proc{s.operator, s.receiver} {
		_, kills, unexpected := p.counts()
		want := operatorKills
		if p == s.receiver {
			want = receiverKills
		}
		if kills != want {
			r.problem("kills missing", "%s killed %d times, want %d", p.name, kills, want)
		}
		for _, u := range unexpected {
			r.problem("processes that died on their own", "%s: %s", p.name, u)
		}
	}
	var requests, posts int64
	for pattern, m := range stats {
		for _, n := range m {
			requests += n
			if strings.HasPrefix(pattern, "POST ") {
				posts += n
			}
		}
	}
	for _, f := range fired {
		base := requests
		if f.Method == http.MethodPost {
			base = posts
		}
		if expected := f.Rate * float64(base); expected >= 20 && f.Fired == 0 {
			r.problem("faults that never fired", "%s %d %s: 0 of about %.0f", f.Kind, f.Status, f.Code, expected)
		}
	}
}
