//go:build ignore

// laterspec_gen extracts from a later Stripe OpenAPI specification (stripe-mock v0.203.0's, API version 2026-08-26)
// the operations and object schemas of the resources that API version 2023-10-16 does not have and the operator
// uses, into laterspec.json. Error responses refer to the 2023-10-16 error schema. Schema names are prefixed with "later." so that they do not clash with the 2023-10-16
// schemas of the same name (product_feature was the marketing feature list then). Descriptions are dropped.
//
//	go run laterspec_gen.go "$(go mod download -json github.com/stripe/stripe-mock@v0.203.0 | jq -r .Dir)/embedded/openapi/spec3.json"
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// paths are the later-only operations the operator calls and stripesim serves.
var paths = []string{
	"/v1/entitlements/features",
	"/v1/entitlements/features/{id}",
	"/v1/entitlements/active_entitlements",
	"/v1/products/{product}/features",
	"/v1/products/{product}/features/{id}",
}

// summary is the data.object of entitlements.active_entitlement_summary.updated events. Stripe's specification has
// no schema for it (the event is documented, its object is not a resource with an endpoint): this one is written
// from Stripe's event documentation, a customer's ID and the list of its active entitlements.
const summary = `{"type": "object", "x-resourceId": "entitlements.active_entitlement_summary",
 "required": ["customer", "entitlements", "livemode", "object"],
 "properties": {
  "customer": {"type": "string", "maxLength": 5000},
  "entitlements": {"type": "object", "required": ["data", "has_more", "object", "url"], "properties": {
    "data": {"type": "array", "items": {"$ref": "#/components/schemas/later.entitlements.active_entitlement"}},
    "has_more": {"type": "boolean"}, "object": {"type": "string", "enum": ["list"]},
    "url": {"type": "string", "maxLength": 5000}}},
  "livemode": {"type": "boolean"},
  "object": {"type": "string", "enum": ["entitlements.active_entitlement_summary"]}}}`

func main() {
	if err := run(os.Args[1], "laterspec.json"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var spec struct {
		Info       map[string]any            `json:"info"`
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	schemas := map[string]any{}
	var need []string
	var rewrite func(v any) any
	rewrite = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			m := map[string]any{}
			for k, e := range t {
				if k == "description" {
					continue
				}
				if s, ok := e.(string); ok && k == "$ref" {
					name := strings.TrimPrefix(s, "#/components/schemas/")
					if name == "error" {
						// Errors keep the 2023-10-16 shape, the one the simulator renders and stripe-go v76 reads.
						m[k] = s
						continue
					}
					if !slices.Contains(need, name) {
						need = append(need, name)
					}
					m[k] = "#/components/schemas/later." + name
					continue
				}
				m[k] = rewrite(e)
			}
			return m
		case []any:
			l := make([]any, len(t))
			for i, e := range t {
				l[i] = rewrite(e)
			}
			return l
		}
		return v
	}
	outPaths := map[string]any{}
	for _, p := range paths {
		ops, ok := spec.Paths[p]
		if !ok {
			return fmt.Errorf("%s is not in the specification", p)
		}
		kept := map[string]any{}
		for method, op := range ops {
			if o, ok := op.(map[string]any); ok {
				kept[method] = map[string]any{"responses": rewrite(o["responses"])}
			}
		}
		outPaths[p] = kept
	}
	for i := 0; i < len(need); i++ {
		s, ok := spec.Components.Schemas[need[i]]
		if !ok {
			return fmt.Errorf("schema %s is not in the specification", need[i])
		}
		schemas["later."+need[i]] = rewrite(s)
	}
	var sum any
	if err := json.Unmarshal([]byte(summary), &sum); err != nil {
		return err
	}
	schemas["later.entitlements.active_entitlement_summary"] = sum
	doc := map[string]any{"info": map[string]any{"version": spec.Info["version"]}, "paths": outPaths,
		"components": map[string]any{"schemas": schemas}}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}
