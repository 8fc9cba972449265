// Package health holds the readiness checks shared by the manager and the webhook receiver.
package health

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// apiServerTimeout bounds one readiness probe of the API server.
const apiServerTimeout = 2 * time.Second

// APIServer returns a check that fails while the Kubernetes API server cannot be reached or is not ready itself.
func APIServer(cfg *rest.Config) (healthz.Checker, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client: %w", err)
	}
	rc := dc.RESTClient()
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), apiServerTimeout)
		defer cancel()
		if err := rc.Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
			return fmt.Errorf("the Kubernetes API server is not reachable: %w", err)
		}
		return nil
	}, nil
}
