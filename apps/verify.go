package apps

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SlackMaxAge is how old a Slack request's timestamp may be (either way),
// against replays.
const SlackMaxAge = 5 * time.Minute

// ErrSignature is wrapped by every verification failure. Callers answer
// 401 and never show the expected signature.
var ErrSignature = errors.New("invalid request signature")

// VerifySlack checks a Slack request signature: X-Slack-Signature must be
// "v0=" + hex(HMAC-SHA256(signingSecret, "v0:" + timestamp + ":" + body))
// and X-Slack-Request-Timestamp within SlackMaxAge of now. body is the raw
// request body.
func VerifySlack(signingSecret string, header http.Header, body []byte, now time.Time) error {
	if signingSecret == "" {
		return fmt.Errorf("%w: no signing secret configured", ErrSignature)
	}
	ts := header.Get("X-Slack-Request-Timestamp")
	sig := header.Get("X-Slack-Signature")
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: missing X-Slack-Signature or X-Slack-Request-Timestamp", ErrSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: X-Slack-Request-Timestamp is not a number", ErrSignature)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > SlackMaxAge || age < -SlackMaxAge {
		return fmt.Errorf("%w: the request timestamp is more than %s away from now", ErrSignature, SlackMaxAge)
	}
	mac := hmac.New(sha256.New, []byte(signingSecret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: X-Slack-Signature does not match", ErrSignature)
	}
	return nil
}

// SignSlack returns the headers of a request Slack would sign (tests and
// tools).
func SignSlack(signingSecret string, body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signingSecret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// VerifyGitHub checks X-Hub-Signature-256: "sha256=" +
// hex(HMAC-SHA256(secret, body)).
func VerifyGitHub(secret string, header http.Header, body []byte) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret configured", ErrSignature)
	}
	sig := header.Get("X-Hub-Signature-256")
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%w: missing or malformed X-Hub-Signature-256", ErrSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: malformed X-Hub-Signature-256", ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return fmt.Errorf("%w: X-Hub-Signature-256 does not match", ErrSignature)
	}
	return nil
}
