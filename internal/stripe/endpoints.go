package stripe

import (
	"context"
	"slices"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

const resWebhookEndpoint = "webhook_endpoint"

// EnsureWebhookEndpoint makes sure Stripe has an enabled endpoint at url for the given event types, pinned to the API
// version stripe-go v76 speaks. It returns the endpoint's signing secret when it creates the endpoint, and "" when
// one already existed. Stripe shows a secret only at creation, so when the caller has no secret for an existing
// endpoint (haveSecret false), that endpoint is replaced by a new one.
func EnsureWebhookEndpoint(ctx context.Context, c *Client, url string, events []string, haveSecret bool) (string,
	error) {
	lp := &stripego.WebhookEndpointListParams{}
	lp.Limit = stripego.Int64(100)
	lp.Single = true
	existing, err := Call(ctx, c, Op{Resource: resWebhookEndpoint, Operation: OpList}, &lp.ListParams,
		func() (*stripego.WebhookEndpoint, error) {
			it := c.API.WebhookEndpoints.List(lp)
			if err := it.Err(); err != nil {
				return nil, err
			}
			for _, e := range it.WebhookEndpointList().Data {
				if e.URL == url {
					return e, nil
				}
			}
			return nil, nil
		})
	if err != nil {
		return "", err
	}
	if existing != nil && !haveSecret {
		p := &stripego.WebhookEndpointParams{}
		if _, err := Call(ctx, c, Op{Resource: resWebhookEndpoint, Operation: OpDelete,
			IdempotencyKey: IdempotencyKey(existing.ID, "delete", 0)}, &p.Params,
			func() (*stripego.WebhookEndpoint, error) { return c.API.WebhookEndpoints.Del(existing.ID, p) }); err != nil &&
			!IsNotFound(err) {
			return "", err
		}
		existing = nil
	}
	if existing != nil {
		if existing.Status == "enabled" && existing.APIVersion == stripego.APIVersion &&
			slices.Equal(existing.EnabledEvents, events) {
			return "", nil
		}
		p := &stripego.WebhookEndpointParams{EnabledEvents: stripego.StringSlice(events), Disabled: stripego.Bool(false)}
		_, err := Call(ctx, c, Op{Resource: resWebhookEndpoint, Operation: OpUpdate,
			IdempotencyKey: IdempotencyKey(existing.ID, "webhook-endpoint", 0, events...)}, &p.Params,
			func() (*stripego.WebhookEndpoint, error) { return c.API.WebhookEndpoints.Update(existing.ID, p) })
		return "", err
	}
	p := &stripego.WebhookEndpointParams{URL: stripego.String(url), EnabledEvents: stripego.StringSlice(events),
		APIVersion: stripego.String(stripego.APIVersion), Description: stripego.String("stripe-operator")}
	created, err := Call(ctx, c, Op{Resource: resWebhookEndpoint, Operation: OpCreate,
		IdempotencyKey: IdempotencyKey("endpoint", "create", time.Now().UnixNano(), url)}, &p.Params,
		func() (*stripego.WebhookEndpoint, error) { return c.API.WebhookEndpoints.New(p) })
	if err != nil {
		return "", err
	}
	return created.Secret, nil
}
