package suggest

import "testing"

func TestNearest(t *testing.T) {
	known := []string{"API_TOKEN", "SLACK_BOT_TOKEN", "url", "method", "headers"}
	for _, c := range []struct{ typed, want string }{
		{"APi_TOKEN", "API_TOKEN"}, // case only
		{"API_TOKN", "API_TOKEN"},  // one deletion
		{"APY_TOKN", "API_TOKEN"},  // two edits
		{"AP_TKN", ""},             // three: too far
		{"SLACK_BOT_TOKEN", ""},    // known: nothing to suggest
		{"urll", "url"},            // short name, one edit
		{"uri", "url"},             // substitution
		{"xyz", ""},                // short name, three edits
		{"ab", ""},                 // short names need to be close
		{"header", "headers"},      //
		{"methdo", "method"},       // a transposition is two edits
		{"", ""},                   //
		{"completely_else", ""},    //
	} {
		if got := Nearest(c.typed, known); got != c.want {
			t.Errorf("Nearest(%q) = %q, want %q", c.typed, got, c.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"abc", "abc", 0},
	} {
		if got := distance(c.a, c.b, 100); got != c.want {
			t.Errorf("distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := distance(c.a, c.b, 1); c.want >= 1 && got < 1 {
			t.Errorf("distance(%q, %q) bound 1 = %d", c.a, c.b, got)
		}
	}
}
