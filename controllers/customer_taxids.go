package controllers

import (
	"context"
	"slices"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A customer's tax IDs are Stripe sub-objects (/v1/customers/{id}/tax_ids) that can be created and deleted but not
// edited: the spec's list is brought about by creating the missing ones and deleting the others. A new customer
// gets its tax IDs in its create request (tax_id_data), so the crash-safe create covers them.

// resTaxID is Stripe's object type of a customer tax ID, which also labels the Stripe request metrics of tax IDs.
const resTaxID = "tax_id"

// customerTaxIDs are the customer's tax IDs in Stripe: those its read included, and the rest of the list when
// Stripe paged it.
func customerTaxIDs(ctx context.Context, c *stripe.Client, cur *stripego.Customer) ([]*stripego.TaxID, error) {
	if cur.TaxIDs == nil {
		return nil, nil
	}
	ids := slices.Clone(cur.TaxIDs.Data)
	for more := cur.TaxIDs.HasMore; more && len(ids) > 0; {
		p := &stripego.TaxIDListParams{Customer: stripego.String(cur.ID)}
		p.Single = true
		p.Limit = stripego.Int64(100)
		p.StartingAfter = stripego.String(ids[len(ids)-1].ID)
		page, err := stripe.Call(ctx, c, stripe.Op{Resource: resTaxID, Operation: stripe.OpList}, &p.ListParams,
			func() (*stripego.TaxIDList, error) {
				it := c.API.TaxIDs.List(p)
				return it.TaxIDList(), it.Err()
			})
		if err != nil {
			return nil, err
		}
		ids, more = append(ids, page.Data...), page.HasMore && len(page.Data) > 0
	}
	return ids, nil
}

// taxIDChanges are the spec's tax IDs Stripe lacks, and Stripe's tax IDs the spec does not list.
func taxIDChanges(spec []billingv1.CustomerTaxID, have []*stripego.TaxID) (create []billingv1.CustomerTaxID,
	remove []*stripego.TaxID) {
	for _, w := range spec {
		if !slices.ContainsFunc(have, func(h *stripego.TaxID) bool { return sameTaxID(w, h) }) {
			create = append(create, w)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(spec, func(w billingv1.CustomerTaxID) bool { return sameTaxID(w, h) }) {
			remove = append(remove, h)
		}
	}
	return create, remove
}

func sameTaxID(w billingv1.CustomerTaxID, h *stripego.TaxID) bool {
	return string(w.Type) == string(h.Type) && w.Value == h.Value
}

// taxIDStatus is status.taxIDs of Stripe's tax IDs.
func taxIDStatus(have []*stripego.TaxID) []billingv1.CustomerTaxIDStatus {
	out := make([]billingv1.CustomerTaxIDStatus, 0, len(have))
	for _, h := range have {
		s := billingv1.CustomerTaxIDStatus{ID: h.ID, Type: string(h.Type), Value: h.Value, Country: h.Country}
		if h.Verification != nil {
			s.Verification = string(h.Verification.Status)
		}
		out = append(out, s)
	}
	return out
}

// taxIDData renders the spec's tax IDs for a customer's create request: nil without any (stripe-go sends an empty
// list as tax_id_data=, which Stripe refuses).
func taxIDData(spec []billingv1.CustomerTaxID) []*stripego.CustomerTaxIDDataParams {
	if len(spec) == 0 {
		return nil
	}
	out := make([]*stripego.CustomerTaxIDDataParams, 0, len(spec))
	for _, t := range spec {
		out = append(out, &stripego.CustomerTaxIDDataParams{Type: stripego.String(string(t.Type)),
			Value: stripego.String(t.Value)})
	}
	return out
}

// syncTaxIDs deletes the customer's tax IDs the spec does not list and creates the missing ones, and records the
// result in status. Each request has its own key: a deletion by the tax ID, a creation by the value and the tax IDs
// it was decided from (so the same value re-created after a deletion outside the operator is a new request).
func syncTaxIDs(ctx context.Context, c *stripe.Client, obj *billingv1.Customer, have []*stripego.TaxID) error {
	create, remove := taxIDChanges(obj.Spec.TaxIDs, have)
	kept := slices.DeleteFunc(slices.Clone(have), func(h *stripego.TaxID) bool { return slices.Contains(remove, h) })
	haveIDs := map[string]string{}
	for _, h := range have {
		haveIDs[h.ID] = string(h.Type) + ":" + h.Value
	}
	for i, h := range remove {
		p := &stripego.TaxIDParams{Customer: stripego.String(obj.Status.ID)}
		key := stripe.IdempotencyKey(string(obj.UID), "delete-tax-id-"+h.ID, obj.Generation)
		_, err := stripe.Call(ctx, c, stripe.Op{Resource: resTaxID, Operation: stripe.OpDelete, IdempotencyKey: key},
			&p.Params, func() (*stripego.TaxID, error) { return c.API.TaxIDs.Del(h.ID, p) })
		if err != nil && !stripe.IsNotFound(err) {
			obj.Status.TaxIDs = taxIDStatus(append(kept, remove[i:]...)) // not deleted yet
			return err
		}
	}
	for _, w := range create {
		p := &stripego.TaxIDParams{Customer: stripego.String(obj.Status.ID), Type: stripego.String(string(w.Type)),
			Value: stripego.String(w.Value)}
		key := stripe.IdempotencyKey(string(obj.UID), "tax-id-"+string(w.Type)+"-"+w.Value, obj.Generation,
			stripe.FormFingerprint(haveIDs))
		t, err := stripe.Call(ctx, c, stripe.Op{Resource: resTaxID, Operation: stripe.OpCreate, IdempotencyKey: key},
			&p.Params, func() (*stripego.TaxID, error) { return c.API.TaxIDs.New(p) })
		if err != nil {
			obj.Status.TaxIDs = taxIDStatus(kept)
			return err
		}
		kept = append(kept, t)
	}
	obj.Status.TaxIDs = taxIDStatus(kept)
	return nil
}
