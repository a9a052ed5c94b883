package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/labstack/echo/v4"
)

// bind decodes a JSON body strictly: unknown fields and trailing data are
// errors that name what is wrong.
func bind(c echo.Context, v any) error {
	r := c.Request()
	// The body is read as JSON whatever its Content-Type says (curl -d
	// sends form encoding); multipart bodies are not JSON at all.
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); strings.HasPrefix(mt, "multipart/") {
			return echo.ErrUnsupportedMediaType
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || strings.Contains(err.Error(), "request body too large") {
			return echo.ErrStatusRequestEntityTooLarge
		}
		if errors.Is(err, io.EOF) {
			return apperr.Invalidf("invalid_json", "request body is empty; send a JSON object")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return apperr.Invalidf("invalid_json", "request body is not valid JSON at byte %d", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return apperr.Invalidf("invalid_json", "field %q must be a %s", te.Field, jsonType(te.Type.Kind().String()))
		}
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			return apperr.Invalidf("unknown_field", "unknown field %s", apperr.Echo(strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)))
		}
		return apperr.Invalidf("invalid_json", "request body is not valid JSON")
	}
	if dec.More() {
		return apperr.Invalidf("invalid_json", "request body has data after the JSON object")
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}
