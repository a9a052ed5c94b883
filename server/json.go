package server

import (
	"encoding/json"

	"github.com/labstack/echo/v4"
)

// jsonSerializer writes JSON without HTML escaping (responses are
// application/json with nosniff, so `<` needs no \u003c) and reads strictly.
type jsonSerializer struct{}

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

func (jsonSerializer) Deserialize(c echo.Context, i any) error {
	if err := bind(c, i); err != nil {
		return err
	}
	return nil
}

var _ echo.JSONSerializer = jsonSerializer{}
