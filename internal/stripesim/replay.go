package stripesim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Replay sends each recorded request to another Stripe-compatible server (stripe-mock, to check request shapes
// against Stripe's OpenAPI specification) with the given key, and returns one error per request it refused.
func Replay(ctx context.Context, baseURL, key string, reqs []Request) []error {
	var errs []error
	for _, r := range reqs {
		url := strings.TrimSuffix(baseURL, "/") + r.Path
		var body io.Reader
		if r.Method == http.MethodPost {
			body = strings.NewReader(r.Params)
		} else if r.Params != "" {
			url += "?" + r.Params
		}
		req, err := http.NewRequestWithContext(ctx, r.Method, url, body)
		if err != nil {
			return append(errs, err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.Method, r.Path, err))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			errs = append(errs, fmt.Errorf("%s %s %s: %d %s", r.Method, r.Path, r.Params, resp.StatusCode, msg))
		}
	}
	return errs
}
