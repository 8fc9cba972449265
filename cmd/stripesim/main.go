// Command stripesim serves the Stripe API simulator (internal/stripesim) over HTTP:
//
//	stripesim -addr 127.0.0.1:12111 [-test-rate 25] [-live-rate 100] [-rate-limit-off] [-state state.json]
//
// GET /_sim/health answers 200 once it listens. With -state, objects and keys are loaded at start (when the file
// exists) and saved on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripesim"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:12111", "The address to listen on.")
	testRate := flag.Float64("test-rate", stripesim.DefaultTestRate, "Requests per second per account in test mode.")
	liveRate := flag.Float64("live-rate", stripesim.DefaultLiveRate, "Requests per second per account in live mode.")
	rateOff := flag.Bool("rate-limit-off", false, "Disable rate limiting.")
	idemTTL := flag.Duration("idempotency-ttl", stripesim.DefaultIdempotencyTTL,
		"How long idempotency keys are kept.")
	state := flag.String("state", "", "A file to load the state from at start and save it to at exit.")
	seed := flag.Uint64("seed", 0, "Seed for IDs and fault injection (0: random).")
	dunningRetries := flag.Int("dunning-retries", 3, "Retries of a failed renewal before the final status.")
	dunningInterval := flag.Duration("dunning-interval", 48*time.Hour, "Time between retries of a failed renewal.")
	dunningFinal := flag.String("dunning-final", "canceled", "Status after the last failed retry: canceled or unpaid.")
	strictPM := flag.Bool("strict-payment-methods", false, "Model payment methods as Stripe does: test tokens "+
		"given on customer creation become attached pm_ objects, and a default must be attached to the customer.")
	anyVersion := flag.Bool("any-api-version", false, "Serve requests whose Stripe-Version header names a "+
		"version other than 2023-10-16, answering in 2023-10-16 shapes (by default they are refused with a 400).")
	flag.Parse()
	if *dunningFinal != "canceled" && *dunningFinal != "unpaid" {
		log.Fatalf("stripesim: -dunning-final must be canceled or unpaid")
	}

	sim := stripesim.New(stripesim.Options{TestRate: *testRate, LiveRate: *liveRate, RateLimitOff: *rateOff,
		IdempotencyTTL: *idemTTL, Seed: *seed, Dunning: stripesim.DunningOptions{Retries: *dunningRetries,
			Interval: *dunningInterval, Final: *dunningFinal}, StrictPaymentMethods: *strictPM,
		AnyAPIVersion: *anyVersion})
	defer sim.Close()
	if err := run(sim, *addr, *state); err != nil {
		log.Fatalf("stripesim: %v", err)
	}
}

func run(sim *stripesim.Sim, addr, state string) error {
	if state != "" {
		if err := sim.Load(state); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Printf("stripesim: listening on http://%s", l.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if state != "" {
		if err := sim.Save(state); err != nil {
			return err
		}
		log.Printf("stripesim: state saved to %s", state)
	}
	return nil
}
