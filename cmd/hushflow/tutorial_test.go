package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// shBlocks returns the ```sh blocks of a markdown page, in order, without
// the indentation of a block inside a list item. Blocks fenced without a
// language (a server to start, a token to paste) are not returned.
func shBlocks(t *testing.T, page string) []string {
	t.Helper()
	doc, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	indent, in := "", false
	for _, line := range strings.Split(string(doc), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case !in && trimmed == "```sh":
			in, indent, cur = true, line[:len(line)-len(trimmed)], nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, strings.TrimPrefix(line, indent))
		}
	}
	return blocks
}

// TestSlackTutorial runs docs/tutorial-slack.md as written: every ```sh
// block, in order, in one bash session with the hushflow binary on PATH,
// against a real `hushflow serve` (with loopback allowed, as step 4
// says) and a stand-in for Slack's API. The stand-in must get the
// messages with the bot token, which no output shows; after the last
// step pins the token to slack.com, a run to the stand-in is refused.
func TestSlackTutorial(t *testing.T) {
	apptest.SkipShort(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the tutorial uses curl")
	}
	blocks := shBlocks(t, "../../docs/tutorial-slack.md")
	if len(blocks) < 6 {
		t.Fatalf("found %d sh blocks in the tutorial", len(blocks))
	}

	const token = "xoxb-1234567890-tutorial-" + `Zq8&<"%\` + "-0987654321"
	var mu sync.Mutex
	var posts []map[string]any
	var auths []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/chat.postMessage" {
			http.NotFound(w, r)
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		posts = append(posts, body)
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok": true, "channel": "C0DEPLOYS", "ts": "1733412345.000100"}`))
	}))
	defer slack.Close()

	srv := startServe(t, "HUSHFLOW_DATA_DIR="+t.TempDir(), "HUSHFLOW_HTTP_ALLOW=127.0.0.1/32")
	adminToken := tokenRE.FindString(srv.output())
	if adminToken == "" {
		t.Fatalf("no admin token in the output of serve:\n%s", srv.output())
	}
	bin := t.TempDir()
	if err := os.Symlink(binary(t), filepath.Join(bin, "hushflow")); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HUSHFLOW_ADDR="+srv.addr, "HUSHFLOW_TOKEN="+adminToken,
		"SLACK_BOT_TOKEN="+token, "SLACK_API_URL="+slack.URL+"/api")

	// One bash session: variables set by a block ($run) stay for the next.
	script := "set -euo pipefail\n"
	for i, b := range blocks {
		script += "echo '### block " + string(rune('1'+i)) + "'\n" + b + "\n"
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = work, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tutorial's commands failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"created project deploys",
		"created string secret SLACK_BOT_TOKEN in project deploys (version 1)",
		"created installation notifier of app slack (project deploys)",
		"bot_token=secrets.SLACK_BOT_TOKEN",
		"updated installation notifier",
		"flow deploy-notify created: version 1 (project deploys)",
		`"Authorization":"[REDACTED:SLACK_BOT_TOKEN]"`,
		"posted to Slack at 1733412345.000100",
		"succeeded",
		"updated secret SLACK_BOT_TOKEN in project deploys (version 2)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the tutorial's output does not say %q:\n%s", want, text)
		}
	}
	mu.Lock()
	if len(posts) != 2 {
		t.Fatalf("the stand-in got %d messages, want 2 (the webhook's and flow run's): %v", len(posts), posts)
	}
	for i, want := range []string{"billing-api 1.4.0 is live", "billing-api 1.4.1 is live"} {
		if posts[i]["channel"] != "#deploys" || posts[i]["text"] != want || auths[i] != "Bearer "+token {
			t.Errorf("message %d: %v (the bot token sent: %v), want %q to #deploys", i, posts[i], auths[i] == "Bearer "+token, want)
		}
	}
	mu.Unlock()

	// The last step pinned the token to slack.com: the stand-in is
	// another host now, and the run is refused before anything is sent.
	run := exec.Command(filepath.Join(bin, "hushflow"), "flow", "run", "deploy-notify", "--project", "deploys", "--environment", "production",
		"--input", `{"service": "billing-api", "version": "1.4.2"}`, "--follow")
	run.Dir, run.Env = work, env
	pinned, err := run.CombinedOutput()
	if exitStatusOf(err) != exitError || !strings.Contains(string(pinned), `secret "SLACK_BOT_TOKEN" may only be sent to slack.com, not 127.0.0.1`) {
		t.Errorf("a run after the pin: %v\n%s", err, pinned)
	}
	mu.Lock()
	if len(posts) != 2 {
		t.Errorf("the stand-in got a message after the pin")
	}
	mu.Unlock()

	// The token shows nowhere: the commands' output, the server's log.
	apptest.AssertAbsent(t, "the tutorial's output", text+string(pinned), token)
	apptest.AssertAbsent(t, "the server's log", srv.output(), token)
}

// exitStatusOf is the exit status of a finished command's error.
func exitStatusOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
