package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeeventledgers,verbs=get;list;create;patch;delete

// The event ledger (docs/architecture.md, The event path). A processed StripeEvent keeps its whole payload (an
// invoice event of Stripe's is about 5 KB, a renewal stores three events): kept for the retention, a renewal day of
// 100,000 subscriptions would hold more than a gigabyte of the cluster's etcd. So once an event is processed, the
// worker records its ID (and the object it was routed to) in a StripeEventLedger, one per hour of processing, and
// deletes the StripeEvent: what recognises a redelivery then costs about 60 bytes per event.
//
// The steps, and what a crash between any two of them leaves:
//
//  1. the receiver stores the StripeEvent and acknowledges (a crash before the store: Stripe retries);
//  2. the worker folds it into its target, holding the target's lock, and queues it for the ledger; with a
//     compaction delay (--event-compaction-delay, to look at processed events) it first marks it Processed and
//     queues it once the delay is over. By default there is no mark: the ledger entry is the event's record of
//     being processed, and the StripeEvent costs two writes, its create and its deletion;
//  3. the ledger records it, in a batch with the others processed meanwhile (a crash before: the event is Pending,
//     or Processed with a delay, and processed again after the restart; the fold and lastEventID are one write, so
//     an event that changed status is not folded twice, and one that changed nothing meets the same ordering
//     rules as an out-of-order delivery);
//  4. the worker deletes the StripeEvent (a crash before: the event is Processed and already recorded, so it is
//     deleted after the restart).
//
// A redelivery stored after step 4 is a new StripeEvent of the same name: the worker finds its ID in the ledger
// before anything else and deletes it without folding it (stripe_operator_stripeevent_redeliveries_total).
//
// The ledger is authoritative without a cache: only the leader's worker writes it, it reads every ledger of a
// namespace from the API server when it first needs one, and it writes with the resourceVersion it holds, so a
// write by anyone else (a former leader) makes it read them again.

// ledgerFlushEvery is how often the ledger writes what was processed since the last write.
const ledgerFlushEvery = 500 * time.Millisecond

var (
	eventsCompacted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stripe_operator_stripeevents_compacted_total",
		Help: "Processed StripeEvents recorded in a StripeEventLedger and deleted with their payload.",
	})
	eventRedeliveries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stripe_operator_stripeevent_redeliveries_total",
		Help: "StripeEvents stored again after their event was processed and compacted (Stripe redelivered it), " +
			"recognised by the ledger and deleted without being folded.",
	})
)

func init() {
	metrics.Registry.MustRegister(eventsCompacted, eventRedeliveries)
}

// ledgerEntry is one processed event waiting to be recorded.
type ledgerEntry struct {
	namespace string
	eventID   string
	// name and uid are the StripeEvent's, deleted once the entry is recorded.
	name string
	uid  types.UID
	// target is Kind/namespace/name, or "".
	target string
}

// ledgerInfo is what the ledger keeps in memory of one StripeEventLedger (not its events: the index has them).
type ledgerInfo struct {
	name            string
	window          time.Time
	count           int
	resourceVersion string
}

// eventLedger records processed events in StripeEventLedgers and recognises them.
type eventLedger struct {
	client    client.Client
	reader    client.Reader
	now       func() time.Time
	retention time.Duration
	// done is told the StripeEvents whose entries were recorded, so that the worker deletes them.
	done chan<- event.TypedGenericEvent[*billingv1.StripeEvent]

	mu sync.Mutex
	// loaded holds the namespaces whose ledgers were read from the API server.
	loaded map[string]bool
	// ledgers by namespace, then name.
	ledgers map[string]map[string]*ledgerInfo
	// index maps namespace/eventID to the name of the ledger recording it.
	index map[string]string
	// pending are the entries to write, by namespace/eventID.
	pending map[string]ledgerEntry
	// written are the StripeEvents whose entries this process recorded and which are not deleted yet, by
	// namespace/eventID: a copy of one seen from a cache that lags behind its Processed mark is the event itself,
	// not a redelivery.
	written map[string]types.UID
}

func newEventLedger(c client.Client, reader client.Reader, now func() time.Time, retention time.Duration,
	done chan<- event.TypedGenericEvent[*billingv1.StripeEvent]) *eventLedger {
	return &eventLedger{client: c, reader: reader, now: now, retention: retention, done: done,
		loaded: map[string]bool{}, ledgers: map[string]map[string]*ledgerInfo{}, index: map[string]string{},
		pending: map[string]ledgerEntry{}, written: map[string]types.UID{}}
}

func ledgerKey(namespace, eventID string) string { return namespace + "/" + eventID }

// ledgerName names the n-th ledger of the hour starting at window.
func ledgerName(window time.Time, n int) string {
	return "ledger-" + window.UTC().Format("20060102-15") + "-" + strconv.Itoa(n)
}

// targetRef is how a ledger names the billing object an event was routed to.
func targetRef(t *billingv1.EventTarget) string {
	if t == nil {
		return ""
	}
	return t.Kind + "/" + t.Namespace + "/" + t.Name
}

// Recorded reports whether the event was processed and recorded (and not collected since).
func (l *eventLedger) Recorded(ctx context.Context, namespace, eventID string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.load(ctx, namespace); err != nil {
		return false, err
	}
	_, ok := l.index[ledgerKey(namespace, eventID)]
	return ok, nil
}

// Redelivery reports whether a StripeEvent whose event is recorded is a redelivery, and not the recorded one seen
// from a cache that lags behind the worker's own writes.
func (l *eventLedger) Redelivery(ev *billingv1.StripeEvent) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written[ledgerKey(ev.Namespace, ev.Spec.EventID)] != ev.UID
}

// Deleted forgets a recorded StripeEvent once it is deleted.
func (l *eventLedger) Deleted(ev *billingv1.StripeEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := ledgerKey(ev.Namespace, ev.Spec.EventID)
	if l.written[key] == ev.UID {
		delete(l.written, key)
	}
}

// Queued reports whether a processed event waits for the next write.
func (l *eventLedger) Queued(namespace, eventID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.pending[ledgerKey(namespace, eventID)]
	return ok
}

// Add queues a processed event for the next write; Recorded says when it is written.
func (l *eventLedger) Add(e ledgerEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[ledgerKey(e.namespace, e.eventID)] = e
}

// load reads the namespace's ledgers from the API server, once (again after a conflict). Called with l.mu held.
func (l *eventLedger) load(ctx context.Context, namespace string) error {
	if l.loaded[namespace] {
		return nil
	}
	list := &billingv1.StripeEventLedgerList{}
	if err := l.reader.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("reading the StripeEventLedgers of %s: %w", namespace, err)
	}
	for key := range l.index {
		if strings.HasPrefix(key, namespace+"/") {
			delete(l.index, key)
		}
	}
	byName := map[string]*ledgerInfo{}
	for i := range list.Items {
		lg := &list.Items[i]
		byName[lg.Name] = &ledgerInfo{name: lg.Name, window: lg.Window.Time, count: len(lg.Events),
			resourceVersion: lg.ResourceVersion}
		for id := range lg.Events {
			l.index[ledgerKey(namespace, id)] = lg.Name
		}
	}
	l.ledgers[namespace] = byName
	l.loaded[namespace] = true
	return nil
}

// Start writes the pending entries and collects expired ledgers until ctx ends (the leader's worker only).
func (l *eventLedger) Start(ctx context.Context) error {
	t := time.NewTicker(ledgerFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := l.flush(ctx); err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "Recording processed StripeEvents in the ledger; retrying")
		}
		if err := l.collect(ctx); err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "Deleting expired StripeEventLedgers; retrying")
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader writes the ledger.
func (*eventLedger) NeedLeaderElection() bool { return true }

// write is one ledger write: the entries to add to a ledger, which is created when info is new.
type write struct {
	namespace string
	info      *ledgerInfo
	create    bool
	entries   []ledgerEntry
}

// flush writes the pending entries: into the open ledger of the current hour of their namespace, the next one when
// it is full. Entries whose write failed stay pending.
func (l *eventLedger) flush(ctx context.Context) error {
	writes, err := l.plan(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range writes {
		if err := l.write(ctx, w); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d ledger writes failed, the first: %w", len(errs), len(writes), errs[0])
	}
	return nil
}

// plan groups the pending entries into writes (with l.mu held only here, so lookups go on during the writes).
func (l *eventLedger) plan(ctx context.Context) ([]write, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil, nil
	}
	byNS := map[string][]ledgerEntry{}
	for key, e := range l.pending {
		if _, done := l.index[key]; done {
			// Recorded already (a Processed event seen again after a restart): only its deletion is left.
			delete(l.pending, key)
			l.notify(e)
			continue
		}
		byNS[e.namespace] = append(byNS[e.namespace], e)
	}
	window := l.now().UTC().Truncate(time.Hour)
	var writes []write
	for ns, entries := range byNS {
		if err := l.load(ctx, ns); err != nil {
			return nil, err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].eventID < entries[j].eventID })
		for n := 0; len(entries) > 0; n++ {
			name := ledgerName(window, n)
			info, exists := l.ledgers[ns][name]
			if !exists {
				info = &ledgerInfo{name: name, window: window}
			}
			room := billingv1.MaxLedgerEntries - info.count
			if room <= 0 {
				continue
			}
			take := entries[:min(room, len(entries))]
			entries = entries[len(take):]
			writes = append(writes, write{namespace: ns, info: info, create: !exists, entries: take})
		}
	}
	return writes, nil
}

// write adds entries to one ledger: a create, or a merge patch of the new keys checked against the resourceVersion
// the ledger holds (a conflict means someone else wrote it: the namespace is read again, the entries stay pending).
func (l *eventLedger) write(ctx context.Context, w write) error {
	events := make(map[string]string, len(w.entries))
	for _, e := range w.entries {
		events[e.eventID] = e.target
	}
	lg := &billingv1.StripeEventLedger{ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: w.info.name}}
	var err error
	if w.create {
		lg.Window, lg.Events = metav1.NewTime(w.info.window), events
		err = l.client.Create(ctx, lg)
	} else {
		var patch []byte
		patch, err = json.Marshal(map[string]any{"metadata": map[string]string{"resourceVersion": w.info.resourceVersion},
			"events": events})
		if err == nil {
			err = l.client.Patch(ctx, lg, client.RawPatch(types.MergePatchType, patch))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
		l.loaded[w.namespace] = false
		return fmt.Errorf("ledger %s/%s changed since it was read: %w", w.namespace, w.info.name, err)
	}
	if err != nil {
		return fmt.Errorf("writing ledger %s/%s: %w", w.namespace, w.info.name, err)
	}
	if l.ledgers[w.namespace] == nil {
		l.ledgers[w.namespace] = map[string]*ledgerInfo{}
	}
	info := l.ledgers[w.namespace][w.info.name]
	if info == nil {
		info = &ledgerInfo{name: w.info.name, window: w.info.window}
		l.ledgers[w.namespace][w.info.name] = info
	}
	info.count, info.resourceVersion = len(lg.Events), lg.ResourceVersion
	for _, e := range w.entries {
		key := ledgerKey(e.namespace, e.eventID)
		l.index[key] = w.info.name
		l.written[key] = e.uid
		delete(l.pending, key)
		l.notify(e)
	}
	eventsCompacted.Add(float64(len(w.entries)))
	return nil
}

// notify tells the worker that an entry is recorded, so it deletes the StripeEvent (called with l.mu held; the
// channel is buffered, and the worker's fallback requeue covers a full one).
func (l *eventLedger) notify(e ledgerEntry) {
	if l.done == nil {
		return
	}
	ev := &billingv1.StripeEvent{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: e.name}}
	select {
	case l.done <- event.TypedGenericEvent[*billingv1.StripeEvent]{Object: ev}:
	default:
	}
}

// collect deletes the ledgers whose hour ended more than the retention ago.
func (l *eventLedger) collect(ctx context.Context) error {
	type expired struct{ namespace, name string }
	var due []expired
	l.mu.Lock()
	now := l.now()
	for ns, byName := range l.ledgers {
		for name, info := range byName {
			if !now.Before(info.window.Add(time.Hour + l.retention)) {
				due = append(due, expired{ns, name})
			}
		}
	}
	l.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	deleted := map[expired]bool{}
	var err error
	for _, d := range due {
		lg := &billingv1.StripeEventLedger{ObjectMeta: metav1.ObjectMeta{Namespace: d.namespace, Name: d.name}}
		if err = client.IgnoreNotFound(l.client.Delete(ctx, lg)); err != nil {
			err = fmt.Errorf("deleting ledger %s/%s: %w", d.namespace, d.name, err)
			break
		}
		deleted[d] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for d := range deleted {
		delete(l.ledgers[d.namespace], d.name)
	}
	for key, name := range l.index {
		ns, _, _ := strings.Cut(key, "/")
		if deleted[expired{ns, name}] {
			delete(l.index, key)
		}
	}
	return err
}
