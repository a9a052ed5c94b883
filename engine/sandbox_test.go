package engine

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/engine/sandbox"
)

// TestMain doubles as the sandbox worker: the pool re-executes this test
// binary, as the server re-executes `hushflow sandbox-worker`.
func TestMain(m *testing.M) {
	if os.Getenv(sandbox.EnvWorker) == "1" {
		os.Exit(sandbox.WorkerMain())
	}
	os.Exit(m.Run())
}

var (
	sbOnce sync.Once
	sbPool *sandbox.Pool
	sbErr  error
)

func testSandbox(t testing.TB) *sandbox.Pool {
	t.Helper()
	sbOnce.Do(func() {
		sbPool, sbErr = sandbox.New(sandbox.Config{Path: os.Args[0], Workers: 2, MemoryLimit: 256 << 20})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return sbPool
}

func TestSandboxedCodeBlocks(t *testing.T) {
	sb := WithSandbox(testSandbox(t))
	tests := []struct {
		name, src string
		want      any
	}{
		{"secrets.get", `return await secrets.get("MY_CREDENTIAL", {environment: "production"})`, "prod-cred"},
		{"steps", `console.log('sent', steps.call.output.body.id); return steps.call.output.body`, map[string]any{"id": "msg_1"}},
		{"input", `return input.items.map(i => i.name).join(",")`, "a,b"},
		{"keys", `return Object.keys(secrets)`, []any{"ANTHROPIC_API_KEY", "API_TOKEN", "DEMO_BOT_SLACK_BOT_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, sec, logs, reads := testEnv()
			p, err := testEngine.Compile(Code, tt.src, sb)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Run(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			if tt.name == "secrets.get" && (!slices.Equal(*reads, []string{"MY_CREDENTIAL"}) || sec.count() != 1) {
				t.Fatalf("reads %q", *reads)
			}
			if tt.name == "steps" && (len(*logs) != 1 || (*logs)[0].Message != "sent msg_1") {
				t.Fatalf("logs %v", *logs)
			}
		})
	}
}

// noDeadline is the deadline of a case that proves another limit than
// the deadline (an unknown secret, the memory limit): far above what the
// case needs on any machine, so that a busy machine cannot turn the
// expected error into a timeout. The memory bomb below takes 0.3 to 1 s
// on an idle 2-core machine and hit a 2 s deadline on a busy one
// (issue 17).
const noDeadline = time.Minute

func TestSandboxedErrors(t *testing.T) {
	sb := WithSandbox(testSandbox(t))
	env, _, _, _ := testEnv()
	p, _ := testEngine.Compile(Code, "const x = 1;\nreturn secrets.NOPE", sb, WithField("code"), WithTimeout(noDeadline))
	_, err := p.Run(context.Background(), env)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnknownSecret) || e.Line != 2 || e.Block != "call" || e.Field != "code" ||
		!strings.Contains(e.Message, `secret "NOPE" is not defined in project billing, environment development`) {
		t.Fatalf("err = %#v", err)
	}
	p, _ = testEngine.Compile(Code, `while (true) {}`, sb, WithTimeout(100*time.Millisecond))
	if _, err := p.Run(context.Background(), env); !errors.Is(err, ErrTimeout) {
		t.Fatalf("loop: %v", err)
	}
	// The memory limit must end this loop: a timeout or any other error
	// fails.
	p, _ = testEngine.Compile(Code, `let s = 'ab'; for (;;) s += s`, sb, WithTimeout(noDeadline))
	start := time.Now()
	if _, err := p.Run(context.Background(), env); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("memory bomb: %v after %s", err, time.Since(start))
	}
	// Fields that are not bounded go to the sandbox too.
	p, _ = testEngine.Compile(Field, `'x'.repeat(2**30)`, sb, WithTimeout(noDeadline))
	if isolated, _ := p.Isolated(); !isolated {
		t.Fatal("repeat is not isolated")
	}
	if _, err := p.Run(context.Background(), env); !errors.Is(err, ErrMemoryLimit) && !errors.Is(err, ErrException) {
		t.Fatalf("repeat: %v", err)
	}
	p, _ = testEngine.Compile(Field, `input.text.split('').reverse().join('')`, sb)
	if got, err := p.Run(context.Background(), env); err != nil || got != "olleh" {
		t.Fatalf("field in sandbox: %v %v", got, err)
	}
}

// The price of isolation (issue 4 (d)): a trivial code block and a
// non-fast-path field, in process and through the sandbox pool.
func benchProgram(b *testing.B, kind Kind, src string, opts ...Option) {
	p, err := testEngine.Compile(kind, src, opts...)
	if err != nil {
		b.Fatal(err)
	}
	env, _, _, _ := testEnv()
	env.OnSecret, env.OnLog = nil, nil
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(context.Background(), env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsolationCodeInProcess(b *testing.B) {
	benchProgram(b, Code, `return input.text`, WithInProcess())
}

func BenchmarkIsolationCodeSandbox(b *testing.B) {
	benchProgram(b, Code, `return input.text`, WithSandbox(testSandbox(b)))
}

func BenchmarkIsolationFieldInProcess(b *testing.B) {
	benchProgram(b, Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]", WithInProcess())
}

func BenchmarkIsolationFieldSandbox(b *testing.B) {
	benchProgram(b, Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]", WithSandbox(testSandbox(b)))
}

func BenchmarkIsolationBoundedFieldInProcess(b *testing.B) {
	benchProgram(b, Field, "`Bearer ${secrets.API_TOKEN}`")
}
