package stripesim

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/time/rate"
)

// KeyConfig registers an API key with the simulator: a restricted key (rk_test_..., rk_live_...) with its
// permissions, or any key that should belong to another account or be refused.
type KeyConfig struct {
	// Key is the API key.
	Key string `json:"key"`
	// Account the key belongs to (default DefaultAccount).
	Account string `json:"account,omitempty"`
	// Permissions of a restricted key, as Stripe names them: rak_<resource>_read or rak_<resource>_write, where
	// resource is customer, product, price, subscription, invoice, payment_intent, charge, dispute,
	// payment_method, coupon, promotion_code, customer_portal (billing_portal/configurations), event or
	// webhook_endpoint. Write implies read.
	Permissions []string `json:"permissions,omitempty"`
	// Revoked keys are refused with 401, as a rolled key is.
	Revoked bool `json:"revoked,omitempty"`
}

// sessionKey is an authenticated key.
type sessionKey struct {
	key     string
	account string
	live    bool
}

var keyPattern = regexp.MustCompile(`^(sk|rk)_(test|live)_[A-Za-z0-9_]+$`)

func bearerKey(r *http.Request) (string, bool) {
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return user, true
	}
	auth := r.Header.Get("Authorization")
	if key, ok := strings.CutPrefix(auth, "Bearer "); ok && key != "" {
		return strings.TrimSpace(key), true
	}
	return "", false
}

// redact shows a key the way Stripe's errors do: its prefix and last four characters.
func redact(key string) string {
	if len(key) <= 12 {
		return "****"
	}
	i := strings.LastIndexByte(key[:len(key)-4], '_')
	if i < 0 {
		i = 0
	}
	return key[:i+1] + "****" + key[len(key)-4:]
}

// authenticate checks the key and, for a restricted key, the permission the endpoint needs.
func (s *Sim) authenticate(key, resource string, isWrite bool) (sessionKey, *apiError) {
	m := keyPattern.FindStringSubmatch(key)
	s.mu.Lock()
	cfg := s.keys[key]
	s.mu.Unlock()
	invalid := &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest,
		Message: "Invalid API Key provided: " + redact(key)}
	if m == nil || (cfg != nil && cfg.Revoked) || (m[1] == "rk" && cfg == nil) {
		return sessionKey{}, invalid
	}
	sk := sessionKey{key: key, account: DefaultAccount, live: m[2] == "live"}
	if cfg != nil && cfg.Account != "" {
		sk.account = cfg.Account
	}
	if m[1] == "rk" {
		need := "rak_" + resource + "_read"
		if isWrite {
			need = "rak_" + resource + "_write"
		}
		ok := slices.Contains(cfg.Permissions, need) ||
			(!isWrite && slices.Contains(cfg.Permissions, "rak_"+resource+"_write"))
		if !ok {
			return sessionKey{}, &apiError{Status: http.StatusForbidden, Type: typeInvalidRequest,
				Message: fmt.Sprintf("The provided key '%s' does not have the required permissions for this "+
					"endpoint on account '%s'. Having the '%s' permission would allow this request to continue.",
					redact(key), sk.account, need)}
		}
	}
	return sk, nil
}

// allow takes one token from the account's bucket for the key's mode.
func (s *Sim) allow(sk sessionKey) bool {
	if s.opts.RateLimitOff {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := storeKey{account: sk.account, live: sk.live}
	lim, ok := s.limiters[k]
	if !ok {
		r := s.opts.TestRate
		if sk.live {
			r = s.opts.LiveRate
		}
		lim = rate.NewLimiter(rate.Limit(r), max(1, int(r)))
		s.limiters[k] = lim
	}
	return lim.Allow()
}
