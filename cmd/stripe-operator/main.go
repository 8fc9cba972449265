// Command stripe-operator runs the manager: the controllers that reconcile Customer, Product, Price and
// Subscription objects to Stripe, under leader election.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/health"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// leaderElectionID names the Lease that replicas compete for.
const leaderElectionID = "stripe-operator.billing.stripe-operator.io"

// options are the command-line settings of the manager.
type options struct {
	metricsAddr             string
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	zap                     zap.Options

	credentialsSecret   string
	namespaceSecretName string
	allowLiveMode       bool
	stripeAPIBase       string
	testRate            float64
	liveRate            float64
	searchRate          float64
	resyncInterval      time.Duration
	clusterName         string
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080",
		"The address the Prometheus metrics endpoint binds to; 0 disables it.")
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
	fs.StringVar(&o.clusterName, "cluster-name", "",
		"Stamped into Stripe metadata as k8s_cluster; defaults to the UID of the kube-system namespace.")
	o.zap.BindFlags(fs)
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(billingv1.AddToScheme(s))
	return s
}

func main() {
	o := options{zap: zap.Options{Development: false}}
	// flag.CommandLine already carries controller-runtime's --kubeconfig flag.
	o.bindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	log := ctrl.Log.WithName("setup")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	defaultSecret, err := parseNamespacedName(o.credentialsSecret)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: newScheme(),
		// Only the credentials Secrets are cached, not every Secret in the cluster.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", o.namespaceSecretName)},
		}},
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", cacheSynced(mgr)); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	apiServer, err := health.APIServer(cfg)
	if err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("apiserver", apiServer); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}

	if defaultSecret.Name != o.namespaceSecretName {
		return fmt.Errorf("--credentials-secret must be named %q, like the per-namespace Secrets (only Secrets of "+
			"that name are watched)", o.namespaceSecretName)
	}
	if o.clusterName == "" {
		if o.clusterName, err = clusterUID(ctx, cfg); err != nil {
			return err
		}
	}
	resolver := &credentials.Resolver{
		Reader: mgr.GetClient(), Default: defaultSecret, NamespaceSecretName: o.namespaceSecretName,
		AllowLiveMode: o.allowLiveMode,
		Factory: stripe.NewFactory(stripe.Config{APIBase: o.stripeAPIBase, TestRate: o.testRate,
			LiveRate: o.liveRate, SearchRate: o.searchRate, Logger: ctrl.Log.WithName("stripe")}),
	}
	if err := controllers.Setup(mgr, resolver, controllers.Options{ResyncInterval: o.resyncInterval,
		ClusterName: o.clusterName}); err != nil {
		return err
	}

	log.Info("Starting the manager", "leaderElection", o.leaderElect, "clusterName", o.clusterName,
		"credentialsSecret", defaultSecret.String(), "allowLiveMode", o.allowLiveMode)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// clusterUID is the UID of the kube-system namespace: a stable name for the cluster in Stripe metadata.
func clusterUID(ctx context.Context, cfg *rest.Config) (string, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", fmt.Errorf("creating a client: %w", err)
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "kube-system"}, ns); err != nil {
		return "", fmt.Errorf("reading the kube-system namespace for --cluster-name: %w", err)
	}
	return string(ns.UID), nil
}

func parseNamespacedName(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return types.NamespacedName{}, fmt.Errorf("%q is not namespace/name", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// cacheSynced reports ready once the manager's informers have synced, so a replica takes traffic only when it can
// read the cluster.
func cacheSynced(mgr ctrl.Manager) healthz.Checker {
	return func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("informer caches have not synced")
		}
		return nil
	}
}
