package redact_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/hushflow/hushflow/redact"
)

func Example() {
	r := redact.New()
	r.Add("API_TOKEN", "tok_9f8e7d6c5b4a")
	r.Add("PIN", "4711") // short: masked only as a whole token

	fmt.Println(r.String("GET /data?token=tok_9f8e7d6c5b4a"))
	fmt.Println(r.String("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("me:tok_9f8e7d6c5b4a"))))
	fmt.Println(r.String("pin 4711, order 47110"))
	fmt.Println(redact.Weak("4711"))
	// Output:
	// GET /data?token=[REDACTED:API_TOKEN]
	// Authorization: Basic bWU6[REDACTED:API_TOKEN]
	// pin [REDACTED:PIN], order 47110
	// true
}

func ExampleRedactor_NewWriter() {
	r := redact.New()
	r.Add("", "s3cr3t-value")
	w := r.NewWriter(os.Stdout)
	fmt.Fprint(w, "first s3cr3t-")
	fmt.Fprint(w, "value second\n")
	w.Close()
	// Output:
	// first [REDACTED] second
}

func ExampleNewHandler() {
	r := redact.New()
	r.Add("DB_PASSWORD", "hunter2-but-longer")
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	log := slog.New(redact.NewHandler(slog.NewTextHandler(os.Stdout, opts), r))
	log.Info("connecting", "dsn", "postgres://app:hunter2-but-longer@db/app")
	// Output:
	// level=INFO msg=connecting dsn=postgres://app:[REDACTED:DB_PASSWORD]@db/app
}

func ExampleRedactor_Error() {
	r := redact.New()
	r.Add("KEY", "key-0123456789")
	base := errors.New("401 invalid key key-0123456789")
	err := r.Error(fmt.Errorf("call api: %w", base))
	fmt.Println(err, errors.Is(err, base))
	// Output:
	// call api: 401 invalid key [REDACTED:KEY] true
}

func ExampleRedactor_Value() {
	r := redact.New()
	r.Add("TOKEN", "xoxb-123-456-abc")
	out := r.Value(map[string]any{"headers": map[string]any{"Authorization": "Bearer xoxb-123-456-abc"}})
	fmt.Println(out)
	// Output:
	// map[headers:map[Authorization:Bearer [REDACTED:TOKEN]]]
}
