package stripesim

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Customer tax IDs: created and deleted, never edited. A value of a type stripesim models is checked against the
// type's format and refused with Stripe's tax_id_invalid; other types are kept as sent. EU VAT, GB VAT and AU ABN
// numbers are verified by Stripe: created pending, then, in test mode, a value ending in 000000000 verifies and one
// ending in 111111111 does not (customer.tax_id.updated), as Stripe's test values do; others stay pending. Stripe
// does not verify US EINs (unavailable).

type taxID struct {
	meta
	Customer     string  `json:"customer"`
	Type         string  `json:"type"`
	Value        string  `json:"value"`
	Country      *string `json:"country"`
	Verification string  `json:"verification"`
	Deleted      bool    `json:"deleted"`
}

// taxIDFormat is a modelled tax ID type: its format and, from the value, its country.
type taxIDFormat struct {
	re       *regexp.Regexp
	country  func(value string) string
	verified bool // Stripe verifies it with the tax authority
}

func fixedCountry(c string) func(string) string { return func(string) string { return c } }

var taxIDFormats = map[string]taxIDFormat{
	// A member state's prefix (EL for Greece, XI for Northern Ireland) and 8 to 12 digits or letters.
	"eu_vat": {re: regexp.MustCompile(
		`^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z]{8,12}$`),
		country: func(v string) string {
			switch v[:2] {
			case "EL":
				return "GR"
			case "XI":
				return "GB"
			}
			return v[:2]
		}, verified: true},
	"gb_vat": {re: regexp.MustCompile(`^GB([0-9]{9}|[0-9]{12})$`), country: fixedCountry("GB"), verified: true},
	"us_ein": {re: regexp.MustCompile(`^[0-9]{2}-[0-9]{7}$`), country: fixedCountry("US")},
	"au_abn": {re: regexp.MustCompile(`^[0-9]{11}$`), country: fixedCountry("AU"), verified: true},
}

func (s *store) renderTaxID(t *taxID) obj {
	if t.Deleted {
		return obj{"id": t.ID, "object": "tax_id", "deleted": true}
	}
	return obj{"id": t.ID, "object": "tax_id", "country": t.Country, "created": t.Created, "customer": t.Customer,
		"livemode": s.live, "owner": obj{"type": "customer", "customer": t.Customer},
		"type": t.Type, "value": t.Value,
		"verification": obj{"status": t.Verification, "verified_address": nil, "verified_name": nil}}
}

// taxIDCustomer is the customer of a tax-ID request's path.
func (c *call) taxIDCustomer() (*customer, *apiError) {
	cu, ok := c.st.customers[c.pathCustomer]
	if !ok || cu.Deleted {
		return nil, noSuch("customer", "customer", c.pathCustomer)
	}
	return cu, nil
}

func (c *call) createTaxID() (any, *apiError) {
	f, p := &c.f, c.form
	if f.unknown(p, "type", "value"); f.err != nil {
		return nil, f.err
	}
	typ, ok := f.str(p, "type")
	if !ok {
		return nil, missingParam("type")
	}
	value, ok := f.str(p, "value")
	if !ok {
		return nil, missingParam("value")
	}
	country, verification, err := checkTaxID(typ, value, "type", "value")
	if err != nil {
		return nil, err
	}
	cu, err := c.taxIDCustomer()
	if err != nil {
		return nil, err
	}
	return c.addTaxID(cu.ID, typ, value, country, verification), nil
}

// checkTaxID validates a tax ID of a type stripesim models against the type's format (Stripe's tax_id_invalid);
// it returns the country the value names and the verification it starts with.
func checkTaxID(typ, value, typeParam, valueParam string) (*string, string, *apiError) {
	if !slices.Contains(stripeTaxIDTypes, typ) {
		return nil, "", invalidParam(typeParam, "Invalid "+typeParam+": must be one of "+
			strings.Join(stripeTaxIDTypes, ", "))
	}
	format, modelled := taxIDFormats[typ]
	if !modelled {
		return nil, "unavailable", nil
	}
	if !format.re.MatchString(value) {
		return nil, "", &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: "tax_id_invalid",
			Param: valueParam, Message: "Invalid value for " + typ + "."}
	}
	country := format.country(value)
	if format.verified {
		return &country, "pending", nil
	}
	return &country, "unavailable", nil
}

// addTaxID stores a customer's new tax ID, with its events, and returns it as created.
func (c *call) addTaxID(customerID, typ, value string, country *string, verification string) obj {
	t := &taxID{meta: c.nextMeta("txi"), Customer: customerID, Type: typ, Value: value, Country: country,
		Verification: verification}
	t.Metadata = nil
	c.st.taxIDs[t.ID] = t
	out := c.st.renderTaxID(t)
	c.emit("customer.tax_id.created", out, nil)
	// Verification by the tax authority (asynchronous in Stripe; settled here for test values).
	if t.Verification == "pending" {
		switch {
		case strings.HasSuffix(value, "000000000"):
			t.Verification = "verified"
		case strings.HasSuffix(value, "111111111"):
			t.Verification = "unverified"
		}
		c.emitUpdate("customer.tax_id.updated", out, c.st.renderTaxID(t))
	}
	return out
}

// taxIDData reads a customer creation's tax_id_data[]: the tax IDs to create with it.
func (c *call) taxIDData() []taxID {
	var out []taxID
	if n := c.form.get("tax_id_data"); n != nil && n.value != nil {
		c.f.fail("tax_id_data", "Invalid array")
		return nil
	}
	for i, d := range c.form.get("tax_id_data").list() {
		prefix := "tax_id_data[" + strconv.Itoa(i) + "]"
		c.f.unknownIn(d, prefix, "type", "value")
		typ, hasType := c.f.str(d, "type")
		value, hasValue := c.f.str(d, "value")
		switch {
		case c.f.err != nil:
			return nil
		case !hasType:
			c.f.err = missingParam(prefix + "[type]")
			return nil
		case !hasValue:
			c.f.err = missingParam(prefix + "[value]")
			return nil
		}
		country, verification, err := checkTaxID(typ, value, prefix+"[type]", prefix+"[value]")
		if err != nil {
			c.f.err = err
			return nil
		}
		out = append(out, taxID{Type: typ, Value: value, Country: country, Verification: verification})
	}
	return out
}

// customerTaxID is the tax ID of the path, which must belong to the path's customer.
func (c *call) customerTaxID() (*taxID, *apiError) {
	if _, err := c.taxIDCustomer(); err != nil {
		return nil, err
	}
	t, ok := c.st.taxIDs[c.id]
	if !ok || t.Deleted || t.Customer != c.pathCustomer {
		return nil, noSuch("tax_id", "id", c.id)
	}
	return t, nil
}

func (c *call) getTaxID() (any, *apiError) {
	c.f.unknown(c.form)
	t, err := c.customerTaxID()
	if err != nil {
		return nil, err
	}
	return c.st.renderTaxID(t), nil
}

func (c *call) deleteTaxID() (any, *apiError) {
	c.f.unknown(c.form)
	t, err := c.customerTaxID()
	if err != nil {
		return nil, err
	}
	c.emit("customer.tax_id.deleted", c.st.renderTaxID(t), nil)
	t.Deleted = true
	return c.st.renderTaxID(t), nil
}

func (c *call) listTaxIDs() (any, *apiError) {
	c.listParams()
	cu, err := c.taxIDCustomer()
	if err != nil {
		return nil, err
	}
	return list(c, "/v1/customers/"+cu.ID+"/tax_ids", c.st.taxIDsOf(cu.ID), c.st.renderTaxID), nil
}

// taxIDsOf are a customer's tax IDs, oldest first.
func (s *store) taxIDsOf(customerID string) []*taxID {
	var out []*taxID
	for _, t := range s.taxIDs {
		if t.Customer == customerID && !t.Deleted {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *taxID) int { return int(a.Seq - b.Seq) })
	return out
}

// customerTaxIDs renders an invoice's customer_tax_ids.
func (s *store) customerTaxIDs(customerID string) []any {
	ids := s.taxIDsOf(customerID)
	out := make([]any, 0, len(ids))
	for _, t := range ids {
		out = append(out, obj{"type": t.Type, "value": t.Value})
	}
	return out
}

// stripeTaxIDTypes are the tax ID types of API version 2023-10-16.
var stripeTaxIDTypes = []string{"ad_nrt", "ae_trn", "ar_cuit", "au_abn", "au_arn", "bg_uic", "bo_tin", "br_cnpj",
	"br_cpf", "ca_bn", "ca_gst_hst", "ca_pst_bc", "ca_pst_mb", "ca_pst_sk", "ca_qst", "ch_vat", "cl_tin", "cn_tin",
	"co_nit", "cr_tin", "do_rcn", "ec_ruc", "eg_tin", "es_cif", "eu_oss_vat", "eu_vat", "gb_vat", "ge_vat", "hk_br",
	"hu_tin", "id_npwp", "il_vat", "in_gst", "is_vat", "jp_cn", "jp_rn", "jp_trn", "ke_pin", "kr_brn", "li_uid",
	"mx_rfc", "my_frp", "my_itn", "my_sst", "no_vat", "no_voec", "nz_gst", "pe_ruc", "ph_tin", "ro_tin", "rs_pib",
	"ru_inn", "ru_kpp", "sa_vat", "sg_gst", "sg_uen", "si_tin", "sv_nit", "th_vat", "tr_tin", "tw_vat", "ua_vat",
	"us_ein", "uy_ruc", "ve_rif", "vn_tin", "za_vat"}
