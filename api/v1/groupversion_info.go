// Package v1 contains the billing.stripe-operator.io/v1 API: Customer, Product, Price, Subscription, Coupon and
// PromotionCode, which declare Stripe billing objects, and StripeEvent, the durable inbox of verified Stripe webhook
// events.
//
// The package imports only apimachinery, so clients can use the types without pulling in the operator.
//
// +kubebuilder:object:generate=true
// +groupName=billing.stripe-operator.io
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "billing.stripe-operator.io", Version: "v1"}

	// SchemeBuilder adds the Go types to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Customer{}, &CustomerList{},
		&Product{}, &ProductList{},
		&Price{}, &PriceList{},
		&Subscription{}, &SubscriptionList{},
		&Coupon{}, &CouponList{},
		&PromotionCode{}, &PromotionCodeList{},
		&StripeEvent{}, &StripeEventList{},
		&StripeEventLedger{}, &StripeEventLedgerList{},
		&TaxRate{}, &TaxRateList{},
		&Meter{}, &MeterList{},
		&BillingPortalConfiguration{}, &BillingPortalConfigurationList{},
		&EntitlementFeature{}, &EntitlementFeatureList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
