package stripesim

import (
	"fmt"
	"net/http"
)

// Stripe error types (the four stripe-go v76 knows) and the codes the simulator uses.
const (
	typeAPI            = "api_error"
	typeCard           = "card_error"
	typeIdempotency    = "idempotency_error"
	typeInvalidRequest = "invalid_request_error"

	codeResourceMissing     = "resource_missing"
	codeRateLimit           = "rate_limit"
	codeLockTimeout         = "lock_timeout"
	codeIdempotencyKeyInUse = "idempotency_key_in_use"
	codeParameterInvalid    = "parameter_invalid_empty"
	codeParameterMissing    = "parameter_missing"
	codeResourceExists      = "resource_already_exists"
)

// apiError is a Stripe-shaped error: the HTTP status and the body {"error": {...}}.
type apiError struct {
	Status      int    `json:"-"`
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message"`
	Param       string `json:"param,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s %s: %s", e.Status, e.Type, e.Code, e.Message)
}

func invalidParam(param, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: param, Message: message}
}

func invalidRequest(message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Message: message}
}

// unmodelledVersion refuses a request sent with a Stripe-Version stripesim does not model (see
// Options.AnyAPIVersion).
func unmodelledVersion(got string) *apiError {
	return invalidRequest("This request asked for Stripe API version " + got + " (the Stripe-Version header), but " +
		"stripesim models version " + apiVersion + " only and does not answer in another version's shapes. Send " +
		"Stripe-Version: " + apiVersion + " or no Stripe-Version header, or run stripesim with -any-api-version " +
		"(Options.AnyAPIVersion) to be answered in " + apiVersion + " shapes.")
}

func missingParam(param string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeParameterMissing,
		Param: param, Message: "Missing required param: " + param + "."}
}

func noSuch(kind, param, id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: codeResourceMissing, Param: param,
		Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

func unrecognizedURL(method, path string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest,
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", method, path)}
}
