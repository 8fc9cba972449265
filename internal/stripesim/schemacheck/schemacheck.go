// Package schemacheck validates the simulator's responses against Stripe's OpenAPI specification for API version
// 2023-10-16, the one stripe-mock v0.183.0 embeds (embedded/openapi/spec3.json), with Stripe's example objects of
// the same version (fixtures3.json). It checks what a client decoding the response relies on: types, required
// fields, nullability, enumerations, unknown fields, the anyOf of expandable fields (an ID unless expand[] named the
// field, then the object), and, for the objects the operator reads, that every field Stripe's fixture renders is
// present. A Recorder keeps every API exchange of a handler for validation at the end of a test suite. What the
// simulator serves that 2023-10-16 lacks (billing meters, a price's recurring.meter) is validated against Stripe's
// later specification, as later.json holds it.
package schemacheck

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/stripe/stripe-mock/embedded"
)

// A focused validator of responses against Stripe's OpenAPI specification for API version 2023-10-16, the one
// stripe-mock v0.183.0 embeds (embedded/openapi/spec3.json), with Stripe's example objects of the same version
// (fixtures3.json). It checks what a client decoding the response relies on: types, required fields, nullability,
// enumerations, unknown fields, the anyOf of expandable fields (an ID unless expand[] named the field, then the
// object), and, for the objects the operator reads, that every field Stripe's fixture renders is present.

// schema is the part of an OpenAPI schema object the validator reads.
type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Required             []string           `json:"required"`
	Nullable             bool               `json:"nullable"`
	AnyOf                []*schema          `json:"anyOf"`
	OneOf                []*schema          `json:"oneOf"`
	AllOf                []*schema          `json:"allOf"`
	Items                *schema            `json:"items"`
	Enum                 []any              `json:"enum"`
	ResourceID           string             `json:"x-resourceId"`
	ExpandableFields     []string           `json:"x-expandableFields"`
	Expansion            *struct {
		OneOf []*schema `json:"oneOf"`
	} `json:"x-expansionResources"`
}

type operation struct {
	Responses map[string]struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type Spec struct {
	Paths      map[string]map[string]*operation `json:"paths"`
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
	Info struct {
		Version string `json:"version"`
	} `json:"info"`

	// byResource is the schema of each x-resourceId (the value of an object's "object" field).
	byResource map[string]*schema
	// fixtures are Stripe's example objects by resource name.
	fixtures map[string]map[string]any
}

// laterSpec holds what the simulator serves that 2023-10-16's specification lacks, taken from Stripe's later one
// (stripe-mock v0.203.0): the billing meter operations and objects, and recurring.meter. genlater.go writes it.
//
//go:generate go run genlater.go
//go:embed later.json
var laterSpec []byte

// addLater merges laterSpec into s: its operations and schemas where s has none, and its properties into s's
// schemas.
func (o *Spec) addLater() error {
	var l struct {
		Paths      map[string]map[string]*operation `json:"paths"`
		Schemas    map[string]*schema               `json:"schemas"`
		Properties map[string]map[string]*schema    `json:"properties"`
	}
	if err := json.Unmarshal(laterSpec, &l); err != nil {
		return fmt.Errorf("later.json: %w", err)
	}
	for p, ops := range l.Paths {
		if o.Paths[p] == nil {
			o.Paths[p] = ops
		}
	}
	for n, sc := range l.Schemas {
		if o.Components.Schemas[n] == nil {
			o.Components.Schemas[n] = sc
		}
	}
	for n, props := range l.Properties {
		sc := o.Components.Schemas[n]
		if sc == nil {
			return fmt.Errorf("later.json adds properties to %s, which the specification lacks", n)
		}
		for k, v := range props {
			sc.Properties[k] = v
		}
	}
	return nil
}

var (
	specOnce sync.Once
	spec     *Spec
	specErr  error
)

// Load parses the specification and the fixtures once per process.
func Load() (*Spec, error) {
	specOnce.Do(func() {
		var s Spec
		if specErr = json.Unmarshal(embedded.OpenAPISpec, &s); specErr != nil {
			return
		}
		if specErr = s.addLater(); specErr != nil {
			return
		}
		s.byResource = map[string]*schema{}
		for _, sc := range s.Components.Schemas {
			if sc.ResourceID != "" && !strings.HasPrefix(sc.ResourceID, "deleted_") {
				s.byResource[sc.ResourceID] = sc
			}
		}
		var fx struct {
			Resources map[string]map[string]any `json:"resources"`
		}
		if specErr = json.Unmarshal(embedded.OpenAPIFixtures, &fx); specErr != nil {
			return
		}
		s.fixtures = fx.Resources
		if specErr = s.addEntitlementSpec(); specErr != nil {
			return
		}
		spec = &s
	})
	return spec, specErr
}

// entitlementSpec holds the operations and object schemas of the resources API version 2023-10-16 does not have and
// the operator uses for entitlements (entitlement features, product features, active entitlements), from Stripe's
// later specification (stripe-mock v0.203.0, API version 2026-08-26), generated by laterspec_gen.go. Their schemas
// are named "later.*" (2023-10-16's product_feature is another object, the marketing feature list);
// the summary of an entitlements.active_entitlement_summary.updated event has no schema in any of Stripe's
// specifications, and the one laterspec.json holds for it is written from Stripe's event documentation.
//
//go:embed laterspec.json
var entitlementSpec []byte

// addEntitlementSpec adds entitlementSpec's operations, for the paths the 2023-10-16 specification lacks, its
// schemas, and its resources by the value of their "object" field where 2023-10-16 has none of that name.
func (o *Spec) addEntitlementSpec() error {
	var later Spec
	if err := json.Unmarshal(entitlementSpec, &later); err != nil {
		return fmt.Errorf("laterspec.json: %w", err)
	}
	for path, ops := range later.Paths {
		if _, ok := o.Paths[path]; !ok {
			o.Paths[path] = ops
		}
	}
	for name, sc := range later.Components.Schemas {
		o.Components.Schemas[name] = sc
		if sc.ResourceID != "" && !strings.HasPrefix(sc.ResourceID, "deleted_") && o.byResource[sc.ResourceID] == nil {
			o.byResource[sc.ResourceID] = sc
		}
	}
	return nil
}

// ExpandableFields are the fields expand[] may name on a resource (the value of its "object" field), as the
// specification lists them (x-expandableFields); ok is false for a resource it does not know.
func (o *Spec) ExpandableFields(resource string) (fields []string, ok bool) {
	sc := o.byResource[resource]
	if sc == nil {
		return nil, false
	}
	return sc.ExpandableFields, true
}

// Version is the API version of the specification.
func (o *Spec) Version() string { return o.Info.Version }

// Fixture is a copy of Stripe's example object of the resource name ("customer", "invoice", …), nil if none.
func (o *Spec) Fixture(name string) map[string]any {
	fx, ok := o.fixtures[name]
	if !ok {
		return nil
	}
	raw, _ := json.Marshal(fx)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// Known reports whether the specification has an operation for the method and path.
func (o *Spec) Known(method, path string) bool {
	_, op := o.findOperation(method, path)
	return op != nil
}

func (o *Spec) resolve(s *schema) *schema {
	for s != nil && s.Ref != "" {
		s = o.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

// operatorReads are the objects the operator reads: every field Stripe's fixture of them has must be present.
var operatorReads = []string{"customer", "product", "price", "subscription", "subscription_item", "invoice",
	"line_item", "payment_intent", "charge", "dispute", "event", "webhook_endpoint", "test_helpers.test_clock",
	"payment_method", "billing_portal.configuration"}

// fixtureOnly are the fields a fixture has that the object rightly lacks in the shapes the simulator renders.
var fixtureOnly = map[string]string{
	// The fixture is a line of type invoiceitem; a line of type subscription has no invoice_item (the spec lets
	// it be absent, not null).
	"line_item.invoice_item": "only lines of type invoiceitem",
}

// Violation is one way a response departs from the specification.
type Violation struct {
	Where string // "GET /v1/invoices 200" or "event evt_… data.object"
	Path  string // JSON path inside the body
	What  string
}

func (v Violation) String() string { return v.Where + ": " + v.Path + ": " + v.What }

// validator walks one JSON value against a schema.
type validator struct {
	spec   *Spec
	expand map[string]bool // expand[] paths of the request, relative to the response body
	out    []Violation
	where  string
}

func (v *validator) fail(path, format string, args ...any) {
	v.out = append(v.out, Violation{Where: v.where, Path: path, What: fmt.Sprintf(format, args...)})
}

// walk validates val (decoded with UseNumber) at JSON path jp; ep is the dotted property path used to match
// expand[] entries (array indexes are not part of it, as in Stripe's expand syntax).
func (v *validator) walk(s *schema, val any, jp, ep string) {
	s = v.spec.resolve(s)
	if s == nil {
		return
	}
	if val == nil {
		if !s.Nullable && (s.Type != "" || len(s.AnyOf) > 0 || len(s.OneOf) > 0) {
			v.fail(jp, "null, but the field is not nullable")
		}
		return
	}
	if s.Expansion != nil && v.expand[ep] {
		if _, isID := val.(string); isID {
			v.fail(jp, "an ID, but expand[] asked for %s: must be the expanded object", ep)
			return
		}
	}
	if alts := append(slices.Clone(s.AnyOf), s.OneOf...); len(alts) > 0 {
		v.alternatives(alts, val, jp, ep)
		return
	}
	for _, all := range s.AllOf {
		v.walk(all, val, jp, ep)
	}
	v.typed(s, val, jp, ep)
}

// alternatives validates val against anyOf/oneOf: it passes if one alternative has no violation; otherwise the
// violations of the alternative of the value's own type, then of the closest one, are reported.
func (v *validator) alternatives(alts []*schema, val any, jp, ep string) {
	var best []Violation
	bestFits := false
	for i, alt := range alts {
		sub := &validator{spec: v.spec, expand: v.expand, where: v.where}
		sub.walk(alt, val, jp, ep)
		if len(sub.out) == 0 {
			return
		}
		fits := v.spec.fits(alt, val)
		if i == 0 || (fits && !bestFits) || (fits == bestFits && len(sub.out) < len(best)) {
			best, bestFits = sub.out, fits
		}
	}
	v.out = append(v.out, best...)
}

// typed checks val against the schema's type (and enum), descending into arrays and objects.
func (v *validator) typed(s *schema, val any, jp, ep string) {
	switch s.Type {
	case "string":
		str, ok := val.(string)
		if !ok {
			v.fail(jp, "want a string, got %s", kind(val))
			return
		}
		if len(s.Enum) > 0 && !slices.ContainsFunc(s.Enum, func(e any) bool { return e == str }) {
			v.fail(jp, "%q is not one of %v", str, s.Enum)
		}
	case "integer":
		n, ok := val.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			v.fail(jp, "want an integer, got %s", kind(val))
		}
	case "number":
		if _, ok := val.(json.Number); !ok {
			v.fail(jp, "want a number, got %s", kind(val))
		}
	case "boolean":
		b, ok := val.(bool)
		if !ok {
			v.fail(jp, "want a boolean, got %s", kind(val))
			return
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, any(b)) {
			v.fail(jp, "%v is not one of %v", b, s.Enum)
		}
	case "array":
		arr, ok := val.([]any)
		if !ok {
			v.fail(jp, "want an array, got %s", kind(val))
			return
		}
		for i, e := range arr {
			v.walk(s.Items, e, jp+"["+strconv.Itoa(i)+"]", ep)
		}
	case "object":
		m, ok := val.(map[string]any)
		if !ok {
			v.fail(jp, "want an object, got %s", kind(val))
			return
		}
		v.object(s, m, jp, ep)
	}
}

func (v *validator) object(s *schema, m map[string]any, jp, ep string) {
	for _, r := range s.Required {
		if _, ok := m[r]; !ok {
			v.fail(jp, "missing required field %q", r)
		}
	}
	if s.Properties == nil {
		if len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{' {
			var ap schema
			if json.Unmarshal(s.AdditionalProperties, &ap) == nil {
				for k, e := range m {
					v.walk(&ap, e, jp+"."+k, join(ep, k))
				}
			}
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps, ok := s.Properties[k]
		if !ok {
			v.fail(jp, "unknown field %q", k)
			continue
		}
		v.walk(ps, m[k], jp+"."+k, join(ep, k))
	}
	// The objects the operator reads render every field Stripe's example of them has.
	if name, _ := m["object"].(string); slices.Contains(operatorReads, name) && m["deleted"] != true {
		fx := v.spec.fixtures[name]
		missing := []string{}
		for k := range fx {
			if _, ok := m[k]; !ok && fixtureOnly[name+"."+k] == "" {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			v.fail(jp, "%s lacks fields Stripe renders: %s", name, strings.Join(missing, ", "))
		}
	}
}

// fits reports whether val has the JSON type of the schema s.
func (o *Spec) fits(s *schema, val any) bool {
	s = o.resolve(s)
	switch val.(type) {
	case string:
		return s.Type == "string"
	case json.Number:
		return s.Type == "integer" || s.Type == "number"
	case bool:
		return s.Type == "boolean"
	case []any:
		return s.Type == "array"
	case map[string]any:
		return s.Type == "object"
	}
	return false
}

func join(ep, k string) string {
	if ep == "" {
		return k
	}
	return ep + "." + k
}

func kind(val any) string {
	switch val.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", val)
}

func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var val any
	err := dec.Decode(&val)
	return val, err
}

// findOperation matches a request path against the specification's path templates; a literal segment beats a
// parameter (/v1/customers/search before /v1/customers/{customer}).
func (o *Spec) findOperation(method, path string) (string, *operation) {
	segs := strings.Split(path, "/")
	bestScore, bestPath := -1, ""
	var best *operation
	for tmpl, ops := range o.Paths {
		op := ops[strings.ToLower(method)]
		if op == nil {
			continue
		}
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		score := 0
		for i := range ts {
			switch {
			case ts[i] == segs[i]:
				score++
			case strings.HasPrefix(ts[i], "{"):
			default:
				score = -1
			}
			if score < 0 {
				break
			}
		}
		if score > bestScore {
			bestScore, bestPath, best = score, tmpl, op
		}
	}
	return bestPath, best
}

// Exchange is one recorded request and its response.
type Exchange struct {
	Method string
	Path   string
	Params url.Values // query of a GET or DELETE, form of a POST
	Status int
	Body   []byte
}

// ValidateResponse checks one response against the operation of its path, method and status.
func (o *Spec) ValidateResponse(ex Exchange) []Violation {
	where := fmt.Sprintf("%s %s %d", ex.Method, ex.Path, ex.Status)
	tmpl, op := o.findOperation(ex.Method, ex.Path)
	if op == nil {
		return []Violation{{Where: where, What: "no such operation in the specification"}}
	}
	where = fmt.Sprintf("%s %s %d", ex.Method, tmpl, ex.Status)
	resp, ok := op.Responses[strconv.Itoa(ex.Status)]
	if !ok {
		resp, ok = op.Responses["default"]
	}
	if !ok {
		return []Violation{{Where: where, What: "status not in the specification"}}
	}
	val, err := decodeJSON(ex.Body)
	if err != nil {
		return []Violation{{Where: where, What: "body is not JSON: " + err.Error()}}
	}
	v := &validator{spec: o, where: where, expand: expandPaths(ex.Params)}
	v.walk(resp.Content["application/json"].Schema, val, "$", "")
	return v.out
}

// expandPaths are the expand[] entries of a request.
func expandPaths(params url.Values) map[string]bool {
	out := map[string]bool{}
	for k, vs := range params {
		if k == "expand[]" || strings.HasPrefix(k, "expand[") {
			for _, e := range vs {
				out[e] = true
			}
		}
	}
	return out
}

// ValidateObject checks an object (an event's data.object) against the schema its "object" field names.
func (o *Spec) ValidateObject(where string, obj map[string]any) []Violation {
	name, _ := obj["object"].(string)
	s := o.byResource[name]
	if obj["deleted"] == true {
		s = o.Components.Schemas["deleted_"+name]
	}
	if s == nil {
		return []Violation{{Where: where, What: fmt.Sprintf("no schema for object %q", name)}}
	}
	// Round-trip through JSON so numbers are json.Number as in responses.
	raw, _ := json.Marshal(obj)
	val, _ := decodeJSON(raw)
	v := &validator{spec: o, where: where}
	v.walk(s, val, "$", "")
	return v.out
}

// Recorder is an http.Handler middleware that keeps every API request and response (the admin API under /_sim/
// is not Stripe's and is passed through).
type Recorder struct {
	next http.Handler
	mu   sync.Mutex
	log  []Exchange
	// shared, when set, is the recorder that keeps the exchanges.
	shared *Recorder
}

// NewRecorder records the exchanges of next.
func NewRecorder(next http.Handler) *Recorder { return &Recorder{next: next} }

// Wrap records the exchanges of next in rec, alongside those of every other handler it wraps (rec's own handler,
// if any, is not involved).
func (rec *Recorder) Wrap(next http.Handler) http.Handler { return &Recorder{next: next, shared: rec} }

// ServeHTTP passes the request on and records it with its response; a response the handler dropped by hijacking
// the connection is not recorded.
func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		rec.next.ServeHTTP(w, r)
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		params, _ = url.ParseQuery(string(body))
	}
	cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
	rec.next.ServeHTTP(cw, r)
	if cw.hijacked {
		return
	}
	if rec.shared != nil {
		rec = rec.shared
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.log = append(rec.log, Exchange{Method: r.Method, Path: r.URL.Path, Params: params, Status: cw.status,
		Body: cw.body.Bytes()})
}

// Exchanges are the exchanges recorded so far, oldest first.
func (rec *Recorder) Exchanges() []Exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.log)
}

// Validate checks every recorded response and every event object (an event's data.object) against the
// specification; responses of URLs Stripe does not have that were answered 404 (tests of unknown URLs) are
// skipped. It returns the number of responses validated and the violations.
func (o *Spec) Validate(exchanges []Exchange, eventObjects []map[string]any) (int, []Violation) {
	var out []Violation
	n := 0
	for _, ex := range exchanges {
		if !o.Known(ex.Method, ex.Path) && ex.Status == http.StatusNotFound {
			continue
		}
		n++
		out = append(out, o.ValidateResponse(ex)...)
	}
	for _, obj := range eventObjects {
		name, _ := obj["object"].(string)
		out = append(out, o.ValidateObject("event data.object "+name, obj)...)
	}
	return n, out
}

var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// Distinct groups violations that differ only in array indexes: each distinct one once, sorted, with how often it
// occurred.
func Distinct(all []Violation) ([]string, map[string]int) {
	counts := map[string]int{}
	for _, v := range all {
		counts[v.Where+": "+indexRE.ReplaceAllString(v.Path, "[*]")+": "+v.What]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, counts
}

type captureWriter struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	hijacked bool // the handler closed the connection (a commit_then_fail fault): there is no response
}

// Hijack lets the simulator drop the connection, as its commit_then_fail faults do.
func (c *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := c.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	c.hijacked = true
	return hj.Hijack()
}

func (c *captureWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}
