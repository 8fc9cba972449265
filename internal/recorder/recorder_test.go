package recorder

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, func(e *testenv.Env) { env = e }) }

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// setup makes a namespace with n ConfigMaps to report on and a running recorder.
func setup(t *testing.T, n int, o Options) (context.Context, string, []*corev1.ConfigMap, *Recorder) {
	t.Helper()
	ctx := testenv.Context(t)
	ns, err := env.Namespace(ctx, "rec")
	if err != nil {
		t.Fatal(err)
	}
	cms := make([]*corev1.ConfigMap, 0, n)
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%d", i)}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		cms = append(cms, cm)
	}
	r := New(env.Client, env.Scheme, "test-operator", o)
	return ctx, ns, cms, r
}

// start runs the recorder until the test ends.
func start(ctx context.Context, r *Recorder) { go func() { _ = r.Start(ctx) }() }

// events lists the namespace's events.k8s.io Events, waiting until there are want of them.
func events(t *testing.T, ctx context.Context, ns string, want int) []eventsv1.Event {
	t.Helper()
	l := &eventsv1.EventList{}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(l.Items) != want {
			return fmt.Errorf("%d Events, want %d", len(l.Items), want)
		}
		return nil
	})
	return l.Items
}

func TestRepeatsFoldIntoASeries(t *testing.T) {
	clk := &clock{t: time.Now()}
	ctx, ns, cms, r := setup(t, 1, Options{Now: clk.now})
	start(ctx, r)
	r.Eventf(cms[0], nil, corev1.EventTypeNormal, "Created", "Reconcile", "Created in Stripe as %s", "cus_1")
	events(t, ctx, ns, 1)
	clk.add(time.Second)
	r.Eventf(cms[0], nil, corev1.EventTypeNormal, "Created", "Reconcile", "again")
	clk.add(time.Second)
	r.Eventf(cms[0], nil, corev1.EventTypeNormal, "Created", "Reconcile", "and again")
	r.Eventf(cms[0], nil, corev1.EventTypeWarning, "Failed", "Reconcile", "%s", strings.Repeat("x", 3000))
	var evs []eventsv1.Event
	testenv.Eventually(t, 20*time.Second, func() error {
		evs = events(t, ctx, ns, 2)
		for _, e := range evs {
			if e.Reason == "Created" && (e.Series == nil || e.Series.Count != 3) {
				return fmt.Errorf("series of Created: %+v", e.Series)
			}
		}
		return nil
	})
	for _, e := range evs {
		switch e.Reason {
		case "Created":
			if e.Note != "Created in Stripe as cus_1" || e.Regarding.Name != "cm-0" || e.Regarding.Kind != "ConfigMap" ||
				e.ReportingController != "test-operator" || e.Action != "Reconcile" {
				t.Errorf("Created Event: %+v", e)
			}
		case "Failed":
			if len(e.Note) != maxNote || e.Type != corev1.EventTypeWarning || e.Series != nil {
				t.Errorf("Failed Event: type %s, note of %d bytes, series %+v", e.Type, len(e.Note), e.Series)
			}
		default:
			t.Errorf("unexpected Event %s", e.Reason)
		}
	}

	// Past the window, the same Event is a new one.
	clk.add(seriesWindow + time.Second)
	r.Eventf(cms[0], nil, corev1.EventTypeNormal, "Created", "Reconcile", "later")
	events(t, ctx, ns, 3)
}

func TestSeriesTableIsBounded(t *testing.T) {
	ctx, ns, cms, r := setup(t, 60, Options{Series: 10})
	start(ctx, r)
	for _, cm := range cms {
		r.Eventf(cm, nil, corev1.EventTypeNormal, "Created", "Reconcile", "made")
	}
	events(t, ctx, ns, len(cms))
	if n := r.Len(); n > 10 {
		t.Errorf("the series table holds %d entries, limit 10", n)
	}
	// The objects recorded last (by any writer) still fold their repeats.
	var last *corev1.ConfigMap
	r.mu.Lock()
	for k := range r.series {
		for _, cm := range cms {
			if cm.UID == k.regarding {
				last = cm
			}
		}
	}
	r.mu.Unlock()
	if last == nil {
		t.Fatal("no object in the series table")
	}
	r.Eventf(last, nil, corev1.EventTypeNormal, "Created", "Reconcile", "made")
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, e := range events(t, ctx, ns, len(cms)) {
			if e.Regarding.Name == last.Name && (e.Series == nil || e.Series.Count != 2) {
				return fmt.Errorf("series %+v", e.Series)
			}
		}
		return nil
	})
}

func TestAFullQueueDropsAndCounts(t *testing.T) {
	// Eight places shared by four writers: two for the one object's writer.
	ctx, ns, cms, r := setup(t, 1, Options{Queue: 8})
	before := testutil.ToFloat64(dropped)
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			r.Eventf(cms[0], nil, corev1.EventTypeNormal, "Retried", "Reconcile", "attempt %d", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Eventf blocked on a full queue")
	}
	if d := testutil.ToFloat64(dropped) - before; d != 3 {
		t.Errorf("%v Events counted as dropped, want 3", d)
	}
	start(ctx, r)
	testenv.Eventually(t, 20*time.Second, func() error {
		evs := events(t, ctx, ns, 1)
		if s := evs[0].Series; s == nil || s.Count != 2 || evs[0].Note != "attempt 0" {
			return fmt.Errorf("Event %q, series %+v", evs[0].Note, s)
		}
		return nil
	})
}
