// Command stripe-operator runs the manager: the controllers that reconcile Customer, Product, Price and
// Subscription objects to Stripe, under leader election.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// options are the command-line settings of the manager.
type options struct {
	metricsAddr             string
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	zap                     zap.Options

	credentialsSecret    string
	namespaceSecretName  string
	allowLiveMode        bool
	stripeAPIBase        string
	testRate             float64
	liveRate             float64
	searchRate           float64
	resyncInterval       time.Duration
	clusterName          string
	workers              int
	webhookAddr          string
	receiverOnly         bool
	webhookEvents        bool
	entitlementSummaries bool
	eventRetention       time.Duration
	driftLoopWindow      time.Duration
	eventCompaction      time.Duration
	webhookPublicURL     string
	observeOnly          bool
	referenceGrace       time.Duration
	namespaceWeights     string
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080",
		"The address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"The address Go's /debug/pprof profiles are served on, for diagnosing CPU and memory; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"The address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Enable leader election, so that only one replica runs the controllers at a time.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"The namespace of the leader-election Lease; defaults to the pod's namespace in a cluster.")
	fs.StringVar(&o.credentialsSecret, "credentials-secret", "stripe-operator-system/"+credentials.DefaultSecretName,
		"The operator-wide Secret (namespace/name) whose apiKey is used where a namespace has no Secret of its own.")
	fs.StringVar(&o.namespaceSecretName, "namespace-credentials-name", credentials.DefaultSecretName,
		"The name of the per-namespace Secret that overrides the operator-wide key (a team's restricted key).")
	fs.BoolVar(&o.allowLiveMode, "allow-live-mode", false,
		"Allow live-mode keys (sk_live_, rk_live_). Without it, objects using one are Stalled (LiveModeNotAllowed).")
	fs.StringVar(&o.stripeAPIBase, "stripe-api-base", "",
		"The Stripe API base URL; empty for https://api.stripe.com (set it to a stripesim URL for a sandbox).")
	fs.Float64Var(&o.testRate, "stripe-test-rate", stripe.DefaultTestRate,
		"Requests per second per Stripe account for test-mode keys.")
	fs.Float64Var(&o.liveRate, "stripe-live-rate", stripe.DefaultLiveRate,
		"Requests per second per Stripe account for live-mode keys.")
	fs.Float64Var(&o.searchRate, "stripe-search-rate", stripe.DefaultSearchRate,
		"Search requests per second per Stripe account.")
	fs.DurationVar(&o.resyncInterval, "resync-interval", 10*time.Hour,
		"How often an in-sync object is re-read from Stripe (jittered by 10%); annotation "+
			billingv1.AnnotationResyncInterval+" overrides it per object.")
	fs.IntVar(&o.workers, "max-concurrent-reconciles", 4, "Reconcile workers per kind.")
	fs.StringVar(&o.webhookAddr, "webhook-bind-address", ":9443",
		"The address of the Stripe webhook receiver (POST "+webhookreceiver.Path+", /healthz, /readyz); 0 disables it.")
	fs.StringVar(&o.webhookPublicURL, "webhook-public-url", "",
		"The public URL of "+webhookreceiver.Path+"; when set, the operator registers it with Stripe (API version "+
			"2023-10-16) and stores the signing secret in the credentials Secret.")
	fs.DurationVar(&o.eventRetention, "event-retention", 96*time.Hour,
		"How long processed events are recognised as such, in the event ledger, so that Stripe's redeliveries "+
			"(for 3 days in live mode) are not folded again; also how long Failed and Unroutable StripeEvents are kept.")
	fs.DurationVar(&o.eventCompaction, "event-compaction-delay", 0,
		"How long a processed StripeEvent is kept, marked Processed with its payload, before it is recorded in the "+
			"event ledger and deleted; 0 records it without the mark.")
	fs.StringVar(&o.namespaceWeights, "namespace-weights", "",
		"Shares of namespaces in the work queues and the Stripe rate budget while several wait, as "+
			"name=weight,... (weights above 0, at most 100; 1 for namespaces not named).")
	fs.DurationVar(&o.driftLoopWindow, "drift-loop-window", 10*time.Minute,
		"A change made in Stripe to a Subscription that comes back within this long of the operator restoring it is "+
			"not restored again: the Subscription turns Stalled with reason DriftLoop until its spec changes.")
	fs.BoolVar(&o.webhookEvents, "webhook-events", true,
		"Stripe's events reach the operator (its receiver, or a receiver-only deployment): a subscription's state, "+
			"period and latest invoice are taken from events. false: they are read from Stripe at each reconcile.")
	fs.BoolVar(&o.entitlementSummaries, "entitlement-summary-events", true,
		"Stripe's entitlements.active_entitlement_summary.updated events reach the operator and set Customers' "+
			"status.entitlements. false: a Customer's active entitlements are read from Stripe once per change of one "+
			"of its subscriptions. Defaults to false with --webhook-public-url (the endpoint the operator registers "+
			"does not carry these events).")
	fs.BoolVar(&o.receiverOnly, "webhook-receiver-only", false,
		"Run only the webhook receiver (no controllers, no leader election), to scale ingest separately.")
	fs.BoolVar(&o.observeOnly, "observe-only", false,
		"Observe every billing object (as managementPolicy: Observe): read Stripe and report status.drift and "+
			"InSync, never write to Stripe.")
	fs.DurationVar(&o.referenceGrace, "reference-grace-period", controllers.DefaultReferenceGrace,
		"How long a reference to an object that does not exist, or has no Stripe ID, is Reconciling before it is "+
			"Stalled (ReferenceNotFound).")
	fs.StringVar(&o.clusterName, "cluster-name", "",
		"Stamped into Stripe metadata as k8s_cluster; defaults to the UID of the kube-system namespace.")
	o.zap.BindFlags(fs)
}

// defaultEntitlementSummaries turns the summary events off when the operator registers its own endpoint and the flag
// was not given: the registered endpoint carries only the event types of the pinned API version, which lack
// entitlements.active_entitlement_summary.updated, so the Customers' entitlements are read instead.
func (o *options) defaultEntitlementSummaries(fs *flag.FlagSet) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "entitlement-summary-events" })
	if !given && o.webhookPublicURL != "" {
		o.entitlementSummaries = false
	}
}

func main() {
	o := options{zap: zap.Options{Development: false}}
	// flag.CommandLine already carries controller-runtime's --kubeconfig flag.
	o.bindFlags(flag.CommandLine)
	flag.Parse()
	o.defaultEntitlementSummaries(flag.CommandLine)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	if limit := setMemoryLimit("/sys/fs/cgroup"); limit > 0 {
		ctrl.Log.Info("Go soft memory limit set from the container's memory limit", "bytes", limit)
	}

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	defaultSecret, err := parseNamespacedName(o.credentialsSecret)
	if err != nil {
		return fmt.Errorf("--credentials-secret: %w", err)
	}
	weights, err := fairness.ParseWeights(o.namespaceWeights)
	if err != nil {
		return fmt.Errorf("--namespace-weights: %w", err)
	}
	mgr, err := operator.New(ctx, cfg, operator.Config{
		MetricsAddr: o.metricsAddr, ProbeAddr: o.probeAddr, PprofAddr: o.pprofAddr,
		LeaderElection: o.leaderElect, LeaderElectionNamespace: o.leaderElectionNamespace,
		CredentialsSecret: defaultSecret, NamespaceSecretName: o.namespaceSecretName, AllowLiveMode: o.allowLiveMode,
		Stripe: stripe.Config{APIBase: o.stripeAPIBase, TestRate: o.testRate, LiveRate: o.liveRate,
			SearchRate: o.searchRate, NamespaceWeights: weights},
		Controllers: controllers.Options{ResyncInterval: o.resyncInterval, ClusterName: o.clusterName,
			MaxConcurrentReconciles: o.workers, EventRetention: o.eventRetention,
			EventCompactionDelay: o.eventCompaction, Webhooks: o.webhookEvents,
			DriftLoopWindow: o.driftLoopWindow, ObserveOnly: o.observeOnly, ReferenceGrace: o.referenceGrace,
			EntitlementReads: !o.entitlementSummaries,
			NamespaceWeights: weights},
		WebhookAddr: o.webhookAddr, ReceiverOnly: o.receiverOnly, WebhookPublicURL: o.webhookPublicURL,
	})
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the manager", "leaderElection", o.leaderElect,
		"credentialsSecret", defaultSecret.String(), "allowLiveMode", o.allowLiveMode)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

func parseNamespacedName(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return types.NamespacedName{}, fmt.Errorf("%q is not namespace/name", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
