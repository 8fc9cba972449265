// Package operator assembles the manager: the scheme, the cache (only credentials Secrets are cached), health and
// readiness checks, the credentials resolver, the Stripe client factory and every controller. cmd/stripe-operator
// runs it; the benchmarks start it in-process.
package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/health"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// LeaderElectionID names the Lease that replicas compete for.
const LeaderElectionID = "stripe-operator.billing.stripe-operator.io"

// Config is what the manager needs beyond the REST config.
type Config struct {
	MetricsAddr string
	ProbeAddr   string
	// PprofAddr serves Go's /debug/pprof (empty or "0": off).
	PprofAddr               string
	LeaderElection          bool
	LeaderElectionNamespace string
	// CredentialsSecret is the operator-wide Secret; it must be named NamespaceSecretName.
	CredentialsSecret   types.NamespacedName
	NamespaceSecretName string
	AllowLiveMode       bool
	Stripe              stripe.Config
	Controllers         controllers.Options
	// SkipNameValidation allows several managers in one process (tests and benchmarks).
	SkipNameValidation bool
	// WebhookAddr is where the webhook receiver listens ("" or "0" disables it). It runs on every replica and
	// stores StripeEvents in the namespace of the credentials Secret, whose webhookSigningSecrets key holds the
	// signing secrets.
	WebhookAddr string
	// WebhookPublicURL, when set, is registered with Stripe as the operator's webhook endpoint (API version
	// 2023-10-16, the event types the operator uses) and its signing secret stored in the credentials Secret.
	WebhookPublicURL string
	// ReceiverOnly runs the webhook receiver alone, without controllers or leader election, to scale ingest
	// separately.
	ReceiverOnly bool
}

// Scheme returns the scheme with the Kubernetes and billing types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(billingv1.AddToScheme(s))
	return s
}

// New builds the manager with every controller registered. An empty Controllers.ClusterName is filled with the
// UID of the kube-system namespace.
func New(ctx context.Context, cfg *rest.Config, c Config) (ctrl.Manager, error) {
	if c.ReceiverOnly && (c.WebhookAddr == "" || c.WebhookAddr == "0") {
		return nil, errors.New("receiver-only mode needs a webhook bind address")
	}
	if c.CredentialsSecret.Name != c.NamespaceSecretName {
		return nil, fmt.Errorf("the operator-wide credentials Secret must be named %q, like the per-namespace "+
			"Secrets (only Secrets of that name are watched)", c.NamespaceSecretName)
	}
	if c.Controllers.ClusterName == "" && !c.ReceiverOnly {
		uid, err := clusterUID(ctx, cfg)
		if err != nil {
			return nil, err
		}
		c.Controllers.ClusterName = uid
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: Scheme(),
		// Secrets are listed and watched only by name, cluster-wide: the operator's RBAC grants Secrets by name alone
		// (config/rbac/credentials_role.yaml), and the API server authorizes a list or watch by the name in its
		// metadata.name field selector.
		// The cache keeps what the operator reads and no more (see controllers.StripForCache).
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", c.NamespaceSecretName)},
		}, DefaultTransform: controllers.StripForCache},
		Metrics:                       metricsserver.Options{BindAddress: c.MetricsAddr},
		HealthProbeBindAddress:        c.ProbeAddr,
		PprofBindAddress:              c.PprofAddr,
		LeaderElection:                c.LeaderElection && !c.ReceiverOnly,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       c.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &c.SkipNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", cacheSynced(mgr)); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	apiServer, err := health.APIServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("apiserver", apiServer); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	if !c.ReceiverOnly {
		if c.Stripe.Logger.GetSink() == nil {
			c.Stripe.Logger = ctrl.Log.WithName("stripe")
		}
		resolver := &credentials.Resolver{
			Reader: mgr.GetClient(), Live: mgr.GetAPIReader(), Default: c.CredentialsSecret,
			NamespaceSecretName: c.NamespaceSecretName,
			AllowLiveMode:       c.AllowLiveMode, Factory: stripe.NewFactory(c.Stripe),
		}
		if err := controllers.Setup(mgr, resolver, c.Controllers); err != nil {
			return nil, err
		}
		if c.WebhookPublicURL != "" {
			if err := mgr.Add(&registrar{url: c.WebhookPublicURL, secret: c.CredentialsSecret, client: mgr.GetClient(),
				resolver: resolver, log: ctrl.Log.WithName("webhook-registrar")}); err != nil {
				return nil, fmt.Errorf("adding the webhook registrar: %w", err)
			}
		}
	}
	if c.WebhookAddr != "" && c.WebhookAddr != "0" {
		receiver := &webhookreceiver.Server{Addr: c.WebhookAddr, Ready: apiServer, Handler: &webhookreceiver.Handler{
			Client: mgr.GetClient(), Namespace: c.CredentialsSecret.Namespace,
			Secrets: webhookreceiver.SecretsFrom(mgr.GetClient(), c.CredentialsSecret),
			Log:     ctrl.Log.WithName("webhook-receiver"),
		}}
		if err := mgr.Add(receiver); err != nil {
			return nil, fmt.Errorf("adding the webhook receiver: %w", err)
		}
	}
	return mgr, nil
}

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=stripeevents,verbs=create

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// clusterUID is the UID of the kube-system namespace: a stable name for the cluster in Stripe metadata.
func clusterUID(ctx context.Context, cfg *rest.Config) (string, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", fmt.Errorf("creating a client: %w", err)
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "kube-system"}, ns); err != nil {
		return "", fmt.Errorf("reading the kube-system namespace for the cluster name: %w", err)
	}
	return string(ns.UID), nil
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
