package webhookreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// SecretsField is the key, in the operator-wide credentials Secret, that holds the webhook signing secrets
// (whsec_...), separated by commas or newlines: several during a rotation. A change takes effect without a restart.
const SecretsField = "webhookSigningSecrets"

// SecretsFrom reads the signing secrets from a Secret through r (the manager's cache) on every call.
func SecretsFrom(r client.Reader, ref types.NamespacedName) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		s := &corev1.Secret{}
		if err := r.Get(ctx, ref, s); err != nil {
			return nil, fmt.Errorf("reading Secret %s: %w", ref, err)
		}
		var out []string
		for _, f := range strings.FieldsFunc(string(s.Data[SecretsField]), func(r rune) bool {
			return r == ',' || r == '\n' || r == ' '
		}) {
			out = append(out, strings.TrimSpace(f))
		}
		return out, nil
	}
}

// Server serves the receiver: POST /webhooks/stripe, /healthz, and /readyz (failing while the API server cannot be
// reached). It is a manager Runnable that runs on every replica, without leader election.
type Server struct {
	Addr    string
	Handler *Handler
	// Ready is the readiness check (the API server).
	Ready healthz.Checker

	listener net.Listener
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica receives webhooks.
func (s *Server) NeedLeaderElection() bool { return false }

// Mux routes the receiver's paths.
func (s *Server) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(Path, s.Handler)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.Ready != nil {
			if err := s.Ready(r); err != nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// Listen binds the address (so a caller can learn the port before Start).
func (s *Server) Listen(ctx context.Context) (net.Addr, error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	s.listener = l
	return l.Addr(), nil
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.listener == nil {
		if _, err := s.Listen(ctx); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.Mux(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.listener) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		// The parent context is done: shutting down gets a fresh one.
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}
