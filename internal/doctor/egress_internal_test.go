package doctor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
)

// refuse stands for the egress policy's transport: it records what it
// was asked and refuses.
type refuse struct{ hosts []string }

func (r *refuse) RoundTrip(req *http.Request) (*http.Response, error) {
	r.hosts = append(r.hosts, req.URL.Host)
	return nil, errors.New("egress refused")
}

// TestEgressOnlyTheSelfTestsRun: a request to the echo listener that does
// not come from the self-test's run (no run in its context) goes through
// the policy, during the test and after; the self-test's own route dials
// nothing but the echo listener.
func TestEgressOnlyTheSelfTestsRun(t *testing.T) {
	echo, err := startEcho()
	if err != nil {
		t.Fatal(err)
	}
	defer echo.close()
	policy := &refuse{}
	asked := 0
	e := NewEgress(policy, func(context.Context, string) (string, error) { asked++; return "flow-1", nil })
	release := e.allow(echo.hostport(), "flow-1")
	get := func(url string) error {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := e.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(echo.url()); err == nil {
		t.Fatal("a request outside the self-test's run reached the echo listener")
	}
	if err := get("http://127.0.0.1:1/"); err == nil {
		t.Fatal("a request to another loopback port was not refused")
	}
	release()
	if err := get(echo.url()); err == nil {
		t.Fatal("a request after the test reached the echo listener")
	}
	if len(policy.hosts) != 3 || asked != 0 {
		t.Errorf("policy asked for %v, run looked up %d times; want 3 requests through the policy, no lookup without a run", policy.hosts, asked)
	}

	// The self-test's route itself dials only the listener.
	release = e.allow(echo.hostport(), "flow-1")
	defer release()
	rt := e.echo[echo.hostport()].rt
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	req, _ := http.NewRequest("GET", "http://"+other.Addr().String()+"/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "only its echo listener") {
		t.Errorf("the self-test's route dialled another address: %v", err)
	}
	req, _ = http.NewRequest("POST", echo.url(), strings.NewReader("x"))
	req.Header.Set(echoHeader, "h")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(echoHeader) != "h" {
		t.Errorf("echo header %q", resp.Header.Get(echoHeader))
	}
}
