// Package webhookreceiver will hold the HTTP server that verifies Stripe's signed webhook events, stores them as
// StripeEvent objects and acknowledges them. It is added by the webhook work.
package webhookreceiver
