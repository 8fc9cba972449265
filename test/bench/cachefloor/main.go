// Command cachefloor holds the operator's informer cache of its billing objects and does nothing else: the same
// scheme, the same transform (controllers.StripForCache), the kinds that hold the objects (Customers,
// Subscriptions, Products, Prices, StripeEvents), and no controller, queue, index or HTTP server.
// BenchmarkRenewalDay runs it beside the objects the operator converged, to measure the least memory a
// controller-runtime process holding them takes: the floor under the operator's own figure.
//
// It prints one JSON line once it has been synced for -settle (the runtime's periodic collection and its scavenger
// have then run), with the Go heap's sizes, and waits to be killed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/operator"
)

func main() {
	settle := flag.Duration("settle", 2*time.Minute, "how long to stay idle after the cache synced before reporting")
	flag.Parse()        // and --kubeconfig, which controller-runtime's config package defines
	err := run(*settle) // returns only on an error: the process then waits to be killed
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func run(settle time.Duration) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: operator.Scheme(), DefaultTransform: controllers.StripForCache})
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, o := range []client.Object{&billingv1.Customer{}, &billingv1.Subscription{}, &billingv1.Product{},
		&billingv1.Price{}, &billingv1.StripeEvent{}} {
		if _, err := c.GetInformer(ctx, o); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("the cache did not sync")
	}
	time.Sleep(settle)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	line, err := json.Marshal(map[string]uint64{"heap_alloc": m.HeapAlloc, "heap_inuse": m.HeapInuse,
		"heap_released": m.HeapReleased, "next_gc": m.NextGC, "sys": m.Sys})
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	select {} // until killed
}
