package redact

import (
	"net/http"
	"strings"
)

// credentialHeaders are masked by name, whatever their value: they carry
// credentials that may not be registered values (a session cookie set by a
// service, a token a client obtained on its own).
var credentialHeaders = map[string]bool{
	"Authorization":        true,
	"Proxy-Authorization":  true,
	"Cookie":               true,
	"Set-Cookie":           true,
	"X-Api-Key":            true,
	"Api-Key":              true,
	"X-Auth-Token":         true,
	"X-Amz-Security-Token": true,
}

// CredentialHeader reports whether the HTTP header name carries credentials
// and is masked by name: Authorization, Proxy-Authorization, Cookie,
// Set-Cookie, X-Api-Key, Api-Key, X-Auth-Token, X-Amz-Security-Token, and
// any name that ends in "-Token", "-Secret" or "-Api-Key".
func CredentialHeader(name string) bool {
	k := http.CanonicalHeaderKey(name)
	return credentialHeaders[k] || strings.HasSuffix(k, "-Token") || strings.HasSuffix(k, "-Secret") || strings.HasSuffix(k, "-Api-Key")
}

// Header returns a copy of h for display: the values of credential headers
// (see [CredentialHeader]) are replaced by "[REDACTED]", and every other
// value and name is masked like a string. A nil h gives nil.
func (r *Redactor) Header(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			if CredentialHeader(k) {
				c[i] = "[REDACTED]"
			} else {
				c[i] = r.String(v)
			}
		}
		out[r.String(k)] = c
	}
	return out
}
