package controllers

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func TestStripForCache(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stripe-credentials",
		Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"apiKey":"c2tfdGVzdF8x"}}`,
			"team": "billing"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}}}}
	out, err := StripForCache(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Secret)
	if len(got.ManagedFields) != 0 || got.Annotations[corev1.LastAppliedConfigAnnotation] != "" ||
		got.Annotations["team"] != "billing" {
		t.Fatalf("stripped object: %+v", got.ObjectMeta)
	}

	record := func(key string) string {
		raw, _ := json.Marshal(billingv1.PendingCreate{IdempotencyKey: key, Generation: 1})
		return string(raw)
	}
	for _, tc := range []struct {
		name      string
		ann       map[string]string
		createKey string
		keep      bool
	}{
		{"recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k1")}, "k1", false},
		{"not recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k2")}, "k1", true},
		{"first create not recorded", map[string]string{billingv1.AnnotationPendingCreate: record("k1")}, "", true},
		{"not the operator's", map[string]string{billingv1.AnnotationPendingCreate: "{}"}, "k1", true},
	} {
		c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: tc.ann,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "stripe-operator"}}}}
		c.Status.CreateKey = tc.createKey
		before := PendingCreate(c)
		out, _ := StripForCache(c)
		got := out.(*billingv1.Customer)
		_, kept := got.Annotations[billingv1.AnnotationPendingCreate]
		if kept != tc.keep || len(got.ManagedFields) != 0 {
			t.Errorf("%s: record kept %v, want %v", tc.name, kept, tc.keep)
		}
		if !tc.keep && got.Annotations != nil {
			t.Errorf("%s: an empty annotations map is cached", tc.name)
		}
		if after := PendingCreate(got); (before == nil) != (after == nil) {
			t.Errorf("%s: PendingCreate changed from %v to %v", tc.name, before, after)
		}
	}
}
