package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/suggest"
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
			if strings.Contains(se.Error(), "exceeded max depth") {
				return apperr.Invalidf("invalid_json", "request body nests deeper than 10000 levels (at byte %d)", se.Offset)
			}
			return apperr.Invalidf("invalid_json", "request body is not valid JSON at byte %d", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return apperr.Invalidf("invalid_json", "field %q must be a %s", te.Field, jsonType(te.Type.Kind().String()))
		}
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
			known := jsonFields(reflect.TypeOf(v))
			if near := suggest.Nearest(name, known); near != "" {
				return apperr.Invalidf("unknown_field", "unknown field %s; did you mean %q?", apperr.Echo(name), near)
			}
			if len(known) > 0 {
				return apperr.Invalidf("unknown_field", "unknown field %s; the fields are %s", apperr.Echo(name), strings.Join(known, ", "))
			}
			return apperr.Invalidf("unknown_field", "unknown field %s", apperr.Echo(name))
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

// jsonFields lists the JSON names of the fields of struct type t (or of
// what it points to), as encoding/json reads them.
func jsonFields(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-", !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
