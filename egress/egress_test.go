package egress_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/redact"
)

// canary is a planted secret value: unique, with characters that need
// escaping.
const canary = `cN4ry&<v4lue>"%\x9Z`

func allowLocal(t *testing.T) egress.Policy {
	t.Helper()
	p, err := egress.ParseAllow("127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseAllow(t *testing.T) {
	p, err := egress.ParseAllow("127.0.0.1/32, 10.0.0.0/8 ::1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Allow) != 3 || p.Allow[2] != netip.MustParsePrefix("::1/128") {
		t.Fatalf("got %v", p.Allow)
	}
	if _, err := egress.ParseAllow("10.0.0.0/33"); err == nil || !strings.Contains(err.Error(), egress.EnvAllow) {
		t.Fatalf("bad prefix: %v", err)
	}
	if _, err := egress.ParseAllow("nope"); err == nil {
		t.Fatal("bad address accepted")
	}
	if p, _ := egress.ParseAllow(""); len(p.Allow) != 0 {
		t.Fatal("empty string is not an empty policy")
	}
}

func TestPolicyCheck(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1":        "loopback",
		"127.1.2.3":        "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "loopback",
		"10.1.2.3":         "private",
		"172.16.0.1":       "private",
		"192.168.1.1":      "private",
		"fd00::1":          "private",
		"::ffff:10.0.0.1":  "private",
		"64:ff9b::a00:1":   "private",
		"2002:a00:1::":     "private",
		"169.254.169.254":  "metadata",
		"169.254.1.1":      "link-local",
		"fe80::1":          "link-local",
		"100.64.0.1":       "CGNAT",
		"0.0.0.0":          "unspecified",
		"::":               "unspecified",
		"224.0.0.1":        "multicast",
		"ff02::1":          "multicast",
		"255.255.255.255":  "reserved",
	}
	var p egress.Policy
	for a, want := range refused {
		err := p.Check(netip.MustParseAddr(a))
		if err == nil || !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want refused as %s", a, err, want)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1", "100.128.0.1"} {
		if err := p.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	err := p.Check(netip.MustParseAddr("127.0.0.1"))
	if got, want := err.Error(), "egress refused: 127.0.0.1 is a loopback address (allow it with HUSHFLOW_HTTP_ALLOW)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	lp := allowLocal(t)
	if err := lp.Check(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Error(err)
	}
	if err := lp.Check(netip.MustParseAddr("::ffff:127.0.0.1")); err != nil {
		t.Error("mapped form of an allowed address:", err)
	}
	if err := lp.Check(netip.MustParseAddr("127.0.0.2")); err == nil {
		t.Error("127.0.0.2 allowed by 127.0.0.1/32")
	}
}

// TestSSRF is SECURITY cases 18-21: internal targets are refused at dial
// time, by default, whatever the URL spells.
func TestSSRF(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("internal data"))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	def := egress.Client(egress.NewTransport(egress.Policy{}), nil, true)
	for _, u := range []string{
		srv.URL + "/?token=" + url.QueryEscape(canary),
		"http://localhost:" + port + "/", // a DNS name resolving to loopback
		"http://[::1]:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://10.0.0.1:" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0.0.0.0:" + port + "/",
		"http://2130706433:" + port + "/", // 127.0.0.1 as a decimal number
	} {
		resp, err := def.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: not refused", u)
			continue
		}
		if !errors.Is(err, egress.ErrRefused) && !strings.Contains(u, "2130706433") {
			t.Errorf("%s: %v, want an egress refusal", u, err)
		}
		if msg := egress.CleanError(err).Error(); strings.Contains(msg, canary) || strings.Contains(msg, url.QueryEscape(canary)) {
			t.Errorf("error quotes the token: %s", msg)
		}
	}
	for _, u := range []string{"file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/"} {
		if resp, err := def.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s: not refused", u)
		}
	}

	// A redirect from an allowed server to internal addresses is refused.
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	defer redir.Close()
	local := egress.Client(egress.NewTransport(allowLocal(t)), nil, true)
	for _, to := range []string{"http://[::1]:" + port + "/", "http://127.0.0.2:" + port + "/", "http://10.0.0.1/", "http://169.254.169.254/"} {
		resp, err := local.Get(redir.URL + "/?to=" + url.QueryEscape(to))
		if err == nil {
			resp.Body.Close()
			t.Errorf("redirect to %s: not refused", to)
		} else if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("redirect to %s: %v", to, err)
		}
	}

	// A proxy in the environment does not bypass the policy.
	t.Setenv("HTTP_PROXY", srv.URL)
	t.Setenv("http_proxy", srv.URL)
	if resp, err := def.Get("http://10.0.0.1/"); err == nil {
		resp.Body.Close()
		t.Error("request through the environment's proxy")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the internal server got %d requests", n)
	}

	// Allowed explicitly, it works.
	resp, err := local.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (rc *recorder) server(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		var sb strings.Builder
		sb.WriteString(r.URL.String() + "\n")
		for k, v := range r.Header {
			sb.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		sb.Write(body)
		rc.reqs = append(rc.reqs, sb.String())
		rc.mu.Unlock()
		if to := r.URL.Query().Get("redirect"); to != "" {
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (rc *recorder) all() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.reqs, "\n---\n")
}

// TestPinning is SECURITY case 22: a secret pinned to host A is refused on
// host B in a header, the query, the body (base64 too) and a redirect.
func TestPinning(t *testing.T) {
	red := redact.New()
	red.Add("API_TOKEN", canary)
	var refusals []string
	var mu sync.Mutex
	pin := &egress.Pinning{
		Match:   red.Matches,
		Allowed: egress.Static(map[string][]string{"API_TOKEN": {"127.0.0.1"}}),
		OnRefuse: func(secret, host string) {
			mu.Lock()
			refusals = append(refusals, secret+"@"+host)
			mu.Unlock()
		},
		MaxScan: 1 << 16,
	}
	var recA, recB recorder
	a := recA.server(t) // http://127.0.0.1:port: host A
	b := recB.server(t)
	bURL := strings.Replace(b.URL, "127.0.0.1", "localhost", 1) // host B
	client := egress.Client(egress.NewTransport(allowLocal(t)), pin, true)

	do := func(method, u string, hdr http.Header, body string) error {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, u, rd)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	jsonCanary, _ := json.Marshal(canary)
	b64 := base64.StdEncoding.EncodeToString([]byte("user:" + canary))
	cases := []struct {
		name, method, path, body string
		hdr                      http.Header
	}{
		{"header", "GET", "/", "", http.Header{"X-Token": {canary}}},
		{"bearer", "GET", "/", "", http.Header{"Authorization": {"Bearer " + canary}}},
		{"query", "GET", "/?token=" + url.QueryEscape(canary), "", nil},
		{"path", "GET", "/" + url.PathEscape(canary), "", nil},
		{"body", "POST", "/", `{"t":` + string(jsonCanary) + `}`, nil},
		{"base64 body", "POST", "/", `{"auth":"` + b64 + `"}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := do(c.method, bURL+c.path, c.hdr, c.body)
			var pe *egress.PinError
			if !errors.As(err, &pe) || pe.Secret != "API_TOKEN" || pe.Host != "localhost" {
				t.Fatalf("to host B: %v, want a pinning refusal", err)
			}
			want := `secret "API_TOKEN" may only be sent to 127.0.0.1, not localhost`
			if len(red.Matches(pe.Error())) > 0 {
				t.Fatalf("the pinning error carries the value: %q", pe.Error())
			}
			// The executor redacts errors: the URL Go quotes may hold an
			// encoded form.
			if msg := red.String(egress.CleanError(err).Error()); !strings.Contains(msg, want) || strings.Contains(msg, canary) || len(red.Matches(msg)) > 0 {
				t.Fatalf("message %q", msg)
			}
			if err := do(c.method, a.URL+c.path, c.hdr, c.body); err != nil {
				t.Fatalf("to host A: %v", err)
			}
		})
	}
	// A redirect that carries the secret to host B in the query is refused
	// on that hop.
	err := do("GET", a.URL+"/?redirect="+url.QueryEscape(bURL+"/?t="+url.QueryEscape(canary)), nil, "")
	if !errors.Is(err, egress.ErrPinned) {
		t.Fatalf("redirect: %v", err)
	}
	// A redirect to host B drops credential headers and secret-carrying
	// headers instead of sending them along.
	if err := do("POST", a.URL+"/?redirect="+url.QueryEscape(bURL+"/next"),
		http.Header{"Authorization": {"Bearer " + canary}, "X-Other": {"k=" + canary}, "X-Plain": {"fine"}}, `{"a":1}`); err != nil {
		t.Fatalf("redirect with headers: %v", err)
	}
	// An unscannable body is refused when secrets are pinned.
	if err := do("POST", a.URL, nil, strings.Repeat("x", 1<<17)); !errors.Is(err, egress.ErrPinned) {
		t.Fatalf("big body: %v", err)
	}

	if got := recB.all(); strings.Contains(got, canary) || len(red.Matches(got)) > 0 {
		t.Fatalf("host B received the secret:\n%s", got)
	}
	if !strings.Contains(recB.all(), "X-Plain: fine") || !strings.Contains(recB.all(), `{"a":1}`) {
		t.Fatalf("redirected request lost its plain header or body:\n%s", recB.all())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refusals) != len(cases)+1 || refusals[0] != "API_TOKEN@localhost" {
		t.Fatalf("audit: %v", refusals)
	}
}

func TestHostAllowed(t *testing.T) {
	for _, c := range []struct {
		pats       []string
		host, port string
		want       bool
	}{
		{[]string{"api.example.com"}, "api.example.com", "443", true},
		{[]string{"api.example.com"}, "evil.example", "443", false},
		{[]string{"*.example.com"}, "a.example.com", "443", true},
		{[]string{"*.example.com"}, "example.com", "443", false},
		{[]string{"*.example.com"}, "evilexample.com", "443", false},
		{[]string{"api.example.com:8443"}, "api.example.com", "443", false},
		{[]string{"api.example.com:8443"}, "api.example.com", "8443", true},
		{[]string{"API.example.com."}, "api.example.com", "80", true},
	} {
		if got := egress.HostAllowed(c.pats, c.host, c.port); got != c.want {
			t.Errorf("%v %s:%s = %v", c.pats, c.host, c.port, got)
		}
	}
}

func TestSafeURL(t *testing.T) {
	got := egress.SafeURL("https://u:p@api.example.com/v1/x?token=abc#frag")
	if got != "https://api.example.com/v1/x" {
		t.Fatal(got)
	}
	err := egress.CleanError(&url.Error{Op: "Get", URL: "http://h/x?api_key=" + canary, Err: errors.New("boom")})
	if strings.Contains(err.Error(), canary) || !strings.Contains(err.Error(), "http://h/x") {
		t.Fatal(err)
	}
}
