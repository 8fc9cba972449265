package fairness

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(ns string, i int) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: fmt.Sprint(i)}}
}

func newQueue(t *testing.T, w Weights) *Queue {
	t.Helper()
	q := NewQueue("test", priorityqueue.New[reconcile.Request]("test"), w, NewLabels(20))
	t.Cleanup(q.ShutDown)
	return q
}

// drain gets n items and returns their namespaces and priorities in order.
func drain(q *Queue, n int) ([]string, []int) {
	nss := make([]string, 0, n)
	prios := make([]int, 0, n)
	for range n {
		it, p, _ := q.GetWithPriority()
		nss = append(nss, it.Namespace)
		prios = append(prios, p)
		q.Done(it)
	}
	return nss, prios
}

// A namespace with 2,000 queued objects does not put a newcomer of another namespace behind them.
func TestQueueNewcomerGoesAheadOfABulkLoad(t *testing.T) {
	q := newQueue(t, nil)
	for i := range 2000 {
		q.Add(req("bulk", i))
	}
	q.Add(req("other", 0))
	nss, _ := drain(q, 3)
	found := false
	for _, ns := range nss {
		found = found || ns == "other"
	}
	if !found {
		t.Fatalf("the other namespace's object was not among the first three served: %v", nss)
	}
	if q.Len() != 2001-3 {
		t.Fatalf("queue length %d", q.Len())
	}
}

// Namespaces alternate; a change a person made goes before every resync; the caller's priority is what it gets back.
func TestQueueAlternatesAndKeepsPriorities(t *testing.T) {
	q := newQueue(t, nil)
	low := handler.LowPriority
	for i := range 3 {
		q.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, req("resync", i))
	}
	for i := range 4 {
		q.Add(req("a", i))
		q.Add(req("b", i))
	}
	nss, prios := drain(q, 11)
	for i := range 8 {
		if prios[i] != 0 || (i > 0 && nss[i] == nss[i-1]) {
			t.Fatalf("changes not alternating by namespace at %d: %v %v", i, nss, prios)
		}
	}
	for i := 8; i < 11; i++ {
		if nss[i] != "resync" || prios[i] != low {
			t.Fatalf("resyncs not last at their own priority: %v %v", nss, prios)
		}
	}
}

// A namespace of weight 3 is served three times as often as one of weight 1 while both wait.
func TestQueueWeights(t *testing.T) {
	q := newQueue(t, Weights{"big": 3})
	for i := range 40 {
		q.Add(req("big", i))
		q.Add(req("small", i))
	}
	nss, _ := drain(q, 40)
	big := 0
	for _, ns := range nss {
		if ns == "big" {
			big++
		}
	}
	if big < 29 || big > 31 {
		t.Fatalf("the weight-3 namespace got %d of 40 turns, want 30", big)
	}
}

func TestUnfoldInvertsFold(t *testing.T) {
	q := newQueue(t, nil)
	for _, p := range []int{0, handler.LowPriority, 5, -1} {
		for i := range 3 {
			folded := q.fold(p, "ns")
			got, tag := unfold(folded)
			if got != p || tag != float64(i) {
				t.Fatalf("fold(%d) #%d = %d, unfolds to %d, tag %v", p, i, folded, got, tag)
			}
		}
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights("team-a=3, team-b=0.5")
	if err != nil || w.Of("team-a") != 3 || w.Of("team-b") != 0.5 || w.Of("team-c") != 1 {
		t.Fatalf("%v %v", w, err)
	}
	for _, bad := range []string{"team-a", "=2", "a=0", "a=-1", "a=x", "a=101"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLabelsAreBounded(t *testing.T) {
	l := NewLabels(2)
	if l.Of("a") != "a" || l.Of("b") != "b" || l.Of("c") != Other || l.Of("a") != "a" {
		t.Fatal("labels beyond the bound are not 'other'")
	}
}

// The map of queued items from a bulk load is made anew once the load is served (a Go map never shrinks), and the
// queue still tracks what comes after.
func TestQueueForgetsABulkLoadsSize(t *testing.T) {
	q := newQueue(t, nil)
	for i := range 1000 {
		q.Add(req("bulk", i))
	}
	drain(q, 1000)
	q.mu.Lock()
	n, peak := len(q.queued), q.peak
	q.mu.Unlock()
	if n != 0 || peak != 0 {
		t.Fatalf("after the load: %d queued, peak %d kept", n, peak)
	}
	q.Add(req("next", 0))
	q.mu.Lock()
	n = len(q.queued)
	q.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d items tracked after one add", n)
	}
	drain(q, 1)
}
