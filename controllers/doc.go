// Package controllers holds the controllers of the billing kinds: one generic external-resource loop (external.go)
// that owns finalizers, crash-safe create, conditions, events and requeues, and a small per-kind mapping of spec
// to Stripe parameters and of the Stripe object to status (<kind>_controller.go).
package controllers
