package stripesim

// routes registers the API endpoints: pattern, the resource a restricted key needs permission on, read or write.
func (s *Sim) routes() {
	type route struct {
		pattern  string
		resource string
		write    bool
		h        func(*call) (any, *apiError)
	}
	for _, r := range []route{
		{"POST /v1/customers", "customer", write, (*call).createCustomer},
		{"GET /v1/customers", "customer", read, (*call).listCustomers},
		{"GET /v1/customers/search", "customer", read, (*call).searchCustomers},
		{"GET /v1/customers/{id}", "customer", read, (*call).getCustomer},
		{"GET /v1/customers/{id}/payment_methods", "customer", read, (*call).listCustomerPaymentMethods},
		{"POST /v1/customers/{id}", "customer", write, (*call).updateCustomer},
		{"DELETE /v1/customers/{id}", "customer", write, (*call).deleteCustomer},
		{"POST /v1/customers/{customer}/tax_ids", "customer", write, (*call).createTaxID},
		{"GET /v1/customers/{customer}/tax_ids", "customer", read, (*call).listTaxIDs},
		{"GET /v1/customers/{customer}/tax_ids/{id}", "customer", read, (*call).getTaxID},
		{"DELETE /v1/customers/{customer}/tax_ids/{id}", "customer", write, (*call).deleteTaxID},

		{"POST /v1/tax_rates", "tax_rate", write, (*call).createTaxRate},
		{"GET /v1/tax_rates", "tax_rate", read, (*call).listTaxRates},
		{"GET /v1/tax_rates/{id}", "tax_rate", read, (*call).getTaxRate},
		{"POST /v1/tax_rates/{id}", "tax_rate", write, (*call).updateTaxRate},

		{"POST /v1/products", "product", write, (*call).createProduct},
		{"GET /v1/products", "product", read, (*call).listProducts},
		{"GET /v1/products/search", "product", read, (*call).searchProducts},
		{"GET /v1/products/{id}", "product", read, (*call).getProduct},
		{"POST /v1/products/{id}", "product", write, (*call).updateProduct},
		{"DELETE /v1/products/{id}", "product", write, (*call).deleteProduct},

		{"POST /v1/prices", "price", write, (*call).createPrice},
		{"GET /v1/prices", "price", read, (*call).listPrices},
		{"GET /v1/prices/search", "price", read, (*call).searchPrices},
		{"GET /v1/prices/{id}", "price", read, (*call).getPrice},
		{"POST /v1/prices/{id}", "price", write, (*call).updatePrice},

		{"POST /v1/subscriptions", "subscription", write, (*call).createSubscription},
		{"GET /v1/subscriptions", "subscription", read, (*call).listSubscriptions},
		{"GET /v1/subscriptions/search", "subscription", read, (*call).searchSubscriptions},
		{"GET /v1/subscriptions/{id}", "subscription", read, (*call).getSubscription},
		{"POST /v1/subscriptions/{id}", "subscription", write, (*call).updateSubscription},
		{"DELETE /v1/subscriptions/{id}", "subscription", write, (*call).cancelSubscription},
		{"POST /v1/subscriptions/{id}/resume", "subscription", write, (*call).resumeSubscription},
		{"DELETE /v1/subscriptions/{id}/discount", "subscription", write, (*call).deleteDiscount},

		{"POST /v1/coupons", "coupon", write, (*call).createCoupon},
		{"GET /v1/coupons", "coupon", read, (*call).listCoupons},
		{"GET /v1/coupons/{id}", "coupon", read, (*call).getCoupon},
		{"POST /v1/coupons/{id}", "coupon", write, (*call).updateCoupon},
		{"DELETE /v1/coupons/{id}", "coupon", write, (*call).deleteCoupon},

		{"POST /v1/promotion_codes", "promotion_code", write, (*call).createPromotionCode},
		{"GET /v1/promotion_codes", "promotion_code", read, (*call).listPromotionCodes},
		{"GET /v1/promotion_codes/{id}", "promotion_code", read, (*call).getPromotionCode},
		{"POST /v1/promotion_codes/{id}", "promotion_code", write, (*call).updatePromotionCode},

		{"POST /v1/billing/meters", "billing_meter", write, (*call).createMeter},
		{"GET /v1/billing/meters", "billing_meter", read, (*call).listMeters},
		{"GET /v1/billing/meters/{id}", "billing_meter", read, (*call).getMeter},
		{"POST /v1/billing/meters/{id}", "billing_meter", write, (*call).updateMeter},
		{"POST /v1/billing/meters/{id}/deactivate", "billing_meter", write, (*call).deactivateMeter},
		{"POST /v1/billing/meters/{id}/reactivate", "billing_meter", write, (*call).reactivateMeter},
		{"POST /v1/billing/meter_events", "billing_meter_event", write, (*call).createMeterEvent},
		{"POST /v1/billing_portal/configurations", "customer_portal", write, (*call).createPortalConfig},
		{"GET /v1/billing_portal/configurations", "customer_portal", read, (*call).listPortalConfigs},
		{"GET /v1/billing_portal/configurations/{id}", "customer_portal", read, (*call).getPortalConfig},
		{"POST /v1/billing_portal/configurations/{id}", "customer_portal", write,
			(*call).updatePortalConfig},

		{"GET /v1/invoices", "invoice", read, (*call).listInvoices},
		{"GET /v1/invoices/{id}", "invoice", read, (*call).getInvoice},
		{"POST /v1/invoices/{id}/pay", "invoice", write, (*call).payInvoiceNow},
		{"GET /v1/payment_intents/{id}", "payment_intent", read, (*call).getPaymentIntent},
		{"GET /v1/charges/{id}", "charge", read, (*call).getCharge},
		{"GET /v1/disputes/{id}", "dispute", read, (*call).getDispute},

		{"GET /v1/payment_methods", "payment_method", read, (*call).listPaymentMethods},
		{"GET /v1/payment_methods/{id}", "payment_method", read, (*call).getPaymentMethod},
		{"POST /v1/payment_methods/{id}/attach", "payment_method", write, (*call).attachPaymentMethod},
		{"POST /v1/payment_methods/{id}/detach", "payment_method", write, (*call).detachPaymentMethod},

		{"POST /v1/test_helpers/test_clocks", "test_clock", write, (*call).createClock},
		{"GET /v1/test_helpers/test_clocks/{id}", "test_clock", read, (*call).getClock},
		{"DELETE /v1/test_helpers/test_clocks/{id}", "test_clock", write, (*call).deleteClock},
		{"POST /v1/test_helpers/test_clocks/{id}/advance", "test_clock", write, (*call).advanceClock},

		{"GET /v1/events", "event", read, (*call).listEvents},
		{"GET /v1/events/{id}", "event", read, (*call).getEvent},

		{"POST /v1/webhook_endpoints", "webhook_endpoint", write, (*call).createEndpoint},
		{"GET /v1/webhook_endpoints", "webhook_endpoint", read, (*call).listEndpoints},
		{"GET /v1/webhook_endpoints/{id}", "webhook_endpoint", read, (*call).getEndpoint},
		{"POST /v1/webhook_endpoints/{id}", "webhook_endpoint", write, (*call).updateEndpoint},
		{"DELETE /v1/webhook_endpoints/{id}", "webhook_endpoint", write, (*call).deleteEndpoint},

		{"POST /v1/entitlements/features", "entitlements.feature", write, (*call).createFeature},
		{"GET /v1/entitlements/features", "entitlements.feature", read, (*call).listFeatures},
		{"GET /v1/entitlements/features/{id}", "entitlements.feature", read, (*call).getFeature},
		{"POST /v1/entitlements/features/{id}", "entitlements.feature", write, (*call).updateFeature},
		{"POST /v1/products/{product}/features", "product", write, (*call).attachFeature},
		{"GET /v1/products/{product}/features", "product", read, (*call).listProductFeatures},
		{"GET /v1/products/{product}/features/{id}", "product", read, (*call).getProductFeature},
		{"DELETE /v1/products/{product}/features/{id}", "product", write, (*call).detachFeature},
		{"GET /v1/entitlements/active_entitlements", "entitlements.active_entitlement", read,
			(*call).listActiveEntitlements},
	} {
		s.endpoint(r.pattern, r.resource, r.write, r.h)
	}
	s.mux.HandleFunc("/v1/", s.notFound)
}
