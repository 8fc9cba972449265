// Package recorder records Kubernetes Events (events.k8s.io/v1) about the operator's objects in bounded memory.
//
// client-go's events broadcaster keeps a copy of every Event it recorded for six minutes, to fold repeats into a
// series, and starts one goroutine per Event: a bulk import of 10,000 objects held some 10 MB of Events and as many
// goroutines. This recorder keeps the same series semantics (an Event repeated for the same object, reason, action
// and type within six minutes raises the first one's series count instead of creating another) with a bounded
// table of small entries, and writes through one worker fed by a bounded queue. When the queue is full an Event is
// dropped and counted (stripe_operator_events_dropped_total), as client-go drops them past 1,000 queued.
package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const (
	// seriesWindow is how long an Event can be folded into as a series (client-go's finishTime).
	seriesWindow = 6 * time.Minute
	// maxNote is the API server's limit on an Event's note.
	maxNote = 1024
	// attempts is how many times a write is tried before the Event is given up.
	attempts = 3
)

var dropped = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "stripe_operator_events_dropped_total",
	Help: "Kubernetes Events not recorded because the recorder's queue was full or the API server refused them.",
})

func init() { ctrlmetrics.Registry.MustRegister(dropped) }

// Options size the recorder; zero values take the defaults.
type Options struct {
	// Queue is how many Events may wait to be written (default 1,000), shared among the writers.
	Queue int
	// Series is how many recent Events are remembered for folding repeats (default 1,024: an object's repeats come
	// within seconds, and 1,024 covers them during a bulk import of thousands).
	Series int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Recorder implements events.EventRecorder. Start it as a manager runnable; until it runs, Events wait in its queue.
type Recorder struct {
	client     client.Client
	scheme     *runtime.Scheme
	controller string
	instance   string
	now        func() time.Time
	// queues are the writers' queues: an object's Events all go to the same one, so they are written in order.
	queues []chan *eventsv1.Event

	mu     sync.Mutex
	series map[seriesKey]*seriesEntry
	// order is the series entries in the order they were recorded, the oldest first, to forget them.
	order []orderEntry
	seq   uint64
	limit int
}

// seriesKey is what makes two Events the same, as client-go's isomorphic key (the object by its UID): the note is
// not part of it.
type seriesKey struct {
	regarding, related types.UID
	typ, reason, ac    string
}

// seriesEntry is what the recorder remembers of a recorded Event: enough to patch its series.
type seriesEntry struct {
	namespace, name string
	count           int32
	first           time.Time
	seq             uint64
}

type orderEntry struct {
	key seriesKey
	seq uint64
}

// New returns a recorder writing through c as reporting controller name.
func New(c client.Client, scheme *runtime.Scheme, name string, o Options) *Recorder {
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	if o.Series <= 0 {
		o.Series = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, _ := os.Hostname()
	r := &Recorder{client: c, scheme: scheme, controller: name, instance: name + "-" + host, now: o.Now,
		series: map[seriesKey]*seriesEntry{}, limit: o.Series}
	for range writers {
		r.queues = append(r.queues, make(chan *eventsv1.Event, max(o.Queue/writers, 1)))
	}
	return r
}

// Eventf records an Event about regarding (and related, if not nil). It never blocks.
func (r *Recorder) Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string,
	args ...any) {
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		logf.Log.WithName("events").Error(err, "Could not reference the object of an Event", "reason", reason)
		return
	}
	var rel *corev1.ObjectReference
	if related != nil {
		rel, _ = reference.GetReference(r.scheme, related)
	}
	msg := fmt.Sprintf(note, args...)
	if len(msg) > maxNote {
		msg = msg[:maxNote-3] + "..."
	}
	now := r.now()
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()), Namespace: ns},
		EventTime:  metav1.NewMicroTime(now), ReportingController: r.controller, ReportingInstance: r.instance,
		Action: action, Reason: reason, Regarding: *ref, Related: rel, Note: msg, Type: eventtype,
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref.UID))
	select {
	case r.queues[h.Sum32()%writers] <- ev:
	default:
		dropped.Inc()
	}
}

// writers is how many Events are written at once: a bulk import reports as fast as it converges.
const writers = 4

// Start writes queued Events until ctx ends.
func (r *Recorder) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, q := range r.queues {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-q:
					r.record(ctx, ev)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// NeedLeaderElection is false: every replica reports what it does.
func (r *Recorder) NeedLeaderElection() bool { return false }

// record writes one Event: a new one, or a series count on the same Event recorded within the window.
func (r *Recorder) record(ctx context.Context, ev *eventsv1.Event) {
	key := keyOf(ev)
	now := ev.EventTime.Time
	r.mu.Lock()
	e, ok := r.series[key]
	if ok && now.Sub(e.first) > seriesWindow {
		ok = false
	}
	var count int32
	if ok {
		e.count++
		count = e.count
	}
	r.mu.Unlock()
	var err error
	for i := range attempts {
		if ok {
			err = r.patchSeries(ctx, e, count, now)
			if apierrors.IsNotFound(err) {
				ok = false // the Event is gone (TTL): record a new one
				continue
			}
		} else {
			err = r.client.Create(ctx, ev.DeepCopy())
			if err == nil {
				r.remember(key, ev, now)
			}
		}
		if err == nil || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsAlreadyExists(err) ||
			ctx.Err() != nil {
			break
		}
		if i < attempts-1 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		dropped.Inc()
		logf.Log.WithName("events").Error(err, "Could not record an Event", "reason", ev.Reason,
			"object", ev.Regarding.Namespace+"/"+ev.Regarding.Name)
	}
}

// patchSeries raises the series count of a recorded Event.
func (r *Recorder) patchSeries(ctx context.Context, e *seriesEntry, count int32, now time.Time) error {
	patch, err := json.Marshal(map[string]any{"series": eventsv1.EventSeries{Count: count,
		LastObservedTime: metav1.NewMicroTime(now)}})
	if err != nil {
		return err
	}
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: e.name}}
	return r.client.Patch(ctx, ev, client.RawPatch(types.MergePatchType, patch))
}

// remember records a new Event in the series table, forgetting expired entries and then the oldest past the limit.
func (r *Recorder) remember(key seriesKey, ev *eventsv1.Event, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.series[key] = &seriesEntry{namespace: ev.Namespace, name: ev.Name, count: 1, first: now, seq: r.seq}
	r.order = append(r.order, orderEntry{key: key, seq: r.seq})
	for len(r.order) > 0 {
		o := r.order[0]
		e, ok := r.series[o.key]
		current := ok && e.seq == o.seq
		if current && len(r.series) <= r.limit && now.Sub(e.first) <= seriesWindow {
			break
		}
		if current {
			delete(r.series, o.key)
		}
		r.order = r.order[1:]
	}
}

// Len is how many Events the series table remembers.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.series)
}

func keyOf(ev *eventsv1.Event) seriesKey {
	k := seriesKey{regarding: ev.Regarding.UID, typ: ev.Type, reason: ev.Reason, ac: ev.Action}
	if ev.Related != nil {
		k.related = ev.Related.UID
	}
	return k
}
