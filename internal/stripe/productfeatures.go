package stripe

import (
	"net/http"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// Product features (POST, GET and DELETE /v1/products/{id}/features) attach entitlement features to a product.
// stripe-go v76 has no typed call for them, so these are raw calls through the client's own backend and key: call
// them inside Call, which applies the budget, the idempotency key and the error rules as for every other call.

// ProductFeature is Stripe's product_feature: an entitlement feature attached to a product.
type ProductFeature struct {
	stripego.APIResource
	ID                 string                        `json:"id"`
	Object             string                        `json:"object"`
	Livemode           bool                          `json:"livemode"`
	Deleted            bool                          `json:"deleted"`
	EntitlementFeature *stripego.EntitlementsFeature `json:"entitlement_feature"`
}

// ProductFeatureList is a page of a product's features.
type ProductFeatureList struct {
	stripego.APIResource
	stripego.ListMeta
	Data []*ProductFeature `json:"data"`
}

// ProductFeatureParams attaches the feature EntitlementFeature (feat_...) to a product.
type ProductFeatureParams struct {
	stripego.Params    `form:"*"`
	EntitlementFeature *string `form:"entitlement_feature"`
}

// AttachProductFeature attaches a feature to product (POST /v1/products/{product}/features).
func (c *Client) AttachProductFeature(product string, p *ProductFeatureParams) (*ProductFeature, error) {
	pf := &ProductFeature{}
	err := c.API.Products.B.Call(http.MethodPost, stripego.FormatURLPath("/v1/products/%s/features", product),
		c.API.Products.Key, p, pf)
	return pf, err
}

// DetachProductFeature detaches the product feature id from product (DELETE /v1/products/{product}/features/{id}).
func (c *Client) DetachProductFeature(product, id string, p *stripego.Params) (*ProductFeature, error) {
	pf := &ProductFeature{}
	err := c.API.Products.B.Call(http.MethodDelete,
		stripego.FormatURLPath("/v1/products/%s/features/%s", product, id), c.API.Products.Key, p, pf)
	return pf, err
}

// ListProductFeatures reads one page of product's features (GET /v1/products/{product}/features).
func (c *Client) ListProductFeatures(product string, p *stripego.ListParams) (*ProductFeatureList, error) {
	body := &form.Values{}
	form.AppendTo(body, p)
	l := &ProductFeatureList{}
	err := c.API.Products.B.CallRaw(http.MethodGet, stripego.FormatURLPath("/v1/products/%s/features", product),
		c.API.Products.Key, body, p.ToParams(), l)
	return l, err
}
