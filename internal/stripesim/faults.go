package stripesim

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Fault kinds.
const (
	// FaultError answers with an error without executing the request.
	FaultError = "error"
	// FaultLatency delays the request (after the idempotency key is taken, so a concurrent retry sees it in use).
	FaultLatency = "latency"
	// FaultCommitThenFail executes the request and stores its idempotent result, then fails the response: a 500
	// or a dropped connection. This is the case idempotency keys exist for.
	FaultCommitThenFail = "commit_then_fail"
)

// Fault is an injected misbehaviour, configured through POST /_sim/faults.
type Fault struct {
	// ID is assigned by the simulator.
	ID string `json:"id"`
	// Kind is error, latency or commit_then_fail.
	Kind string `json:"kind"`
	// Method matches the HTTP method; empty matches any.
	Method string `json:"method,omitempty"`
	// Path is a glob on the request path where * matches any characters, for example /v1/customers*.
	// Empty matches any path.
	Path string `json:"path,omitempty"`
	// Rate is the probability the fault fires on a matching request (default 1). Faults acting before execution
	// (error, latency) exclude each other, as do commit-then-fail faults: see pickFaults.
	Rate float64 `json:"rate,omitempty"`
	// Count limits how many times the fault fires; 0 is unlimited.
	Count int `json:"count,omitempty"`
	// Status, Code and Type are the error a FaultError returns (default 500 api_error). For example 503, or
	// 429 with code lock_timeout.
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	Type   string `json:"type,omitempty"`
	// LatencyMS is the delay a FaultLatency adds.
	LatencyMS int `json:"latency_ms,omitempty"`
	// Response is how a FaultCommitThenFail fails: "500" (default) or "drop" (the connection is closed).
	Response string `json:"response,omitempty"`
	// Fired counts how many times the fault acted on a request: an error answered, a latency delayed an executed
	// request, a commit-then-fail failed a request that succeeded.
	Fired int `json:"fired"`

	pathRE *regexp.Regexp
}

func (f *Fault) validate() string {
	switch f.Kind {
	case FaultError, FaultLatency, FaultCommitThenFail:
	default:
		return "kind must be error, latency or commit_then_fail"
	}
	if f.Rate < 0 || f.Rate > 1 {
		return "rate must be between 0 and 1"
	}
	if f.Response != "" && f.Response != "500" && f.Response != "drop" {
		return `response must be "500" or "drop"`
	}
	if f.Rate == 0 {
		f.Rate = 1
	}
	if f.Kind == FaultError && f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	if f.Type == "" {
		f.Type = typeAPI
		if f.Status > 0 && f.Status < 500 {
			f.Type = typeInvalidRequest
		}
	}
	f.pathRE = globRE(f.Path)
	return ""
}

func globRE(glob string) *regexp.Regexp {
	if glob == "" {
		glob = "*"
	}
	parts := strings.Split(glob, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

func (f *Fault) matches(method, path string) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, method)) && f.pathRE.MatchString(path) &&
		(f.Count == 0 || f.Fired < f.Count)
}

func (f *Fault) apiError() *apiError {
	msg := "An unexpected error occurred (injected by stripesim)."
	if f.Code == codeLockTimeout {
		msg = "This object cannot be accessed right now because another API request or Stripe process is " +
			"currently accessing it (injected by stripesim)."
	}
	return &apiError{Status: f.Status, Type: f.Type, Code: f.Code, Message: msg}
}

func (f *Fault) latency() time.Duration { return time.Duration(f.LatencyMS) * time.Millisecond }

// failAfterCommit fails a response whose change was committed.
func (f *Fault) failAfterCommit(w http.ResponseWriter) int {
	if f.Response == "drop" {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return 0
			}
		}
	}
	return writeError(w, &apiError{Status: http.StatusInternalServerError, Type: typeAPI,
		Message: "An unexpected error occurred after the request was processed (injected by stripesim)."})
}

// pickFaults returns the fault that acts before execution (an error or latency) and the commit-then-fail fault that
// acts after it. The faults of one phase exclude each other: one draw picks at most one of those matching, so each
// fires with its own rate (5% errors and 3% 429s are 8% of the requests) as long as the rates of the faults matching
// a request add up to at most 1; beyond that, earlier faults win. A picked fault is counted as fired at once, so
// that Count holds under concurrency; release uncounts one that did not act after all.
func (s *Sim) pickFaults(method, path string) (before, after *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var drawBefore, drawAfter float64
	var accBefore, accAfter float64
	drawnBefore, drawnAfter := false, false
	for _, f := range s.faults {
		if !f.matches(method, path) {
			continue
		}
		if f.Kind == FaultCommitThenFail {
			if after != nil {
				continue
			}
			if !drawnAfter {
				drawAfter, drawnAfter = s.randFloat(), true
			}
			if drawAfter < accAfter+f.Rate {
				after = f
				f.Fired++
			}
			accAfter += f.Rate
			continue
		}
		if before != nil {
			continue
		}
		if !drawnBefore {
			drawBefore, drawnBefore = s.randFloat(), true
		}
		if drawBefore < accBefore+f.Rate {
			before = f
			f.Fired++
		}
		accBefore += f.Rate
	}
	return before, after
}

// release uncounts a picked fault that did not act: the request was answered before it could (by another fault,
// a validation error, an idempotent replay), or a commit-then-fail request did not succeed.
func (s *Sim) release(f *Fault) {
	if f == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Fired--
}
