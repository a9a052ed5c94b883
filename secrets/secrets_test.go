package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

var ctx = context.Background()

func keyring(t testing.TB, spec string) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var (
	key1 = secrets.NewKey()
	key2 = secrets.NewKey()
)

// setup makes projects billing and shop and a store under k1.
func setup(t testing.TB, db *store.DB, with ...func(*secrets.Config)) *secrets.Store {
	t.Helper()
	ps := projects.NewService(db)
	for _, p := range []string{"billing", "shop"} {
		if _, err := ps.Create(ctx, p, "test"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := secrets.Config{DB: db, Keyring: keyring(t, "k1:"+key1), Logger: slog.New(slog.DiscardHandler)}
	for _, w := range with {
		w(&cfg)
	}
	return secrets.New(cfg)
}

func create(t testing.TB, s *secrets.Store, name, value string, sc secrets.Scope) *secrets.Secret {
	t.Helper()
	m, _, err := s.Create(ctx, "alice", secrets.CreateInput{Name: name, Scope: sc, Value: secrets.NewValue(value)})
	if err != nil {
		t.Fatalf("create %s in %s: %v", name, sc.Describe(), err)
	}
	return m
}

func resolve(t testing.TB, s *secrets.Store, p, e, name string) (string, secrets.Meta) {
	t.Helper()
	v, m, err := s.Resolve(ctx, secrets.Access{Project: p, Environment: e, Name: name, RunID: "r1", BlockID: "b1", Actor: "run"})
	if err != nil {
		t.Fatalf("resolve %s for %s/%s: %v", name, p, e, err)
	}
	return v.Reveal(), m
}

func TestResolutionOrder(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		create(t, s, "TOKEN", "org-value-123456", secrets.Scope{})
		create(t, s, "TOKEN", "env-value-123456", secrets.Scope{Environment: "production"})
		create(t, s, "TOKEN", "project-value-123456", secrets.Scope{Project: "billing"})
		create(t, s, "TOKEN", "pe-value-123456", secrets.Scope{Project: "billing", Environment: "production"})
		create(t, s, "SHOP_ONLY", "shop-value-123456", secrets.Scope{Project: "shop"})
		cases := []struct{ project, env, want, from string }{
			{"billing", "production", "pe-value-123456", "project+environment"},
			{"billing", "staging", "project-value-123456", "project"},
			{"shop", "production", "env-value-123456", "environment"},
			{"shop", "staging", "org-value-123456", "organization"},
			{"", "", "org-value-123456", "organization"},
		}
		for _, c := range cases {
			got, m := resolve(t, s, c.project, c.env, "TOKEN")
			if got != c.want || m.Scope.Label() != c.from {
				t.Errorf("%s/%s: got %q from %s, want %q from %s", c.project, c.env, got, m.Scope.Label(), c.want, c.from)
			}
			list, err := s.Resolved(ctx, c.project, c.env)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range list {
				if it.Name == "TOKEN" && it.From != c.from {
					t.Errorf("resolved listing %s/%s: TOKEN from %s, want %s", c.project, c.env, it.From, c.from)
				}
			}
		}
		// A project never sees another project's secrets.
		_, _, err := s.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: "SHOP_ONLY"})
		if !errors.Is(err, secrets.ErrUnknownSecret) {
			t.Fatalf("billing resolved shop's secret: %v", err)
		}
		want := `secret "SHOP_ONLY" is not defined for project billing, environment production (looked in: project+environment, project, environment, organization)`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
		rr := s.NewRunResolver("billing", "production", "run-1")
		if _, _, err := rr.Resolve(ctx, "b", "SHOP_ONLY", secrets.Scope{Project: "shop"}); !errors.Is(err, secrets.ErrUnknownSecret) {
			t.Fatalf("run of billing read shop's secret with an explicit scope: %v", err)
		}
		names, _ := s.Names(ctx, "billing", "production")
		if strings.Join(names, ",") != "TOKEN" {
			t.Errorf("names = %v", names)
		}
		vals, err := s.ResolvedValues(ctx, "shop", "production")
		if err != nil || vals["TOKEN"].Reveal() != "env-value-123456" || vals["SHOP_ONLY"].Reveal() != "shop-value-123456" {
			t.Errorf("resolved values: %v %v", len(vals), err)
		}
		// Listing a scope shows what is defined exactly there.
		l, _ := s.List(ctx, secrets.Scope{Project: "billing"})
		if len(l) != 1 || l[0].ScopeLabel != "project" {
			t.Errorf("list billing: %+v", l)
		}
	})
}

func TestValidation(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		create(t, s, "DUP", "some-value-1234567", secrets.Scope{})
		cases := []struct {
			name string
			in   secrets.CreateInput
			kind apperr.Kind
			want string
		}{
			{"digit first", secrets.CreateInput{Name: "1ABC", Value: secrets.NewValue("x")}, apperr.Invalid, "JavaScript identifier"},
			{"dash", secrets.CreateInput{Name: "A-B", Value: secrets.NewValue("x")}, apperr.Invalid, "letters, digits or '_'"},
			{"too long", secrets.CreateInput{Name: strings.Repeat("A", 129), Value: secrets.NewValue("x")}, apperr.Invalid, "up to 128"},
			{"empty value", secrets.CreateInput{Name: "E"}, apperr.Invalid, "value is empty"},
			{"64 KiB + 1", secrets.CreateInput{Name: "BIG", Value: secrets.NewValue(strings.Repeat("a", 64<<10+1))}, apperr.TooLarge, "64 KiB"},
			{"1 MiB + 1 file", secrets.CreateInput{Name: "BIG", Kind: secrets.KindFile, Value: secrets.NewValue(strings.Repeat("a", 1<<20+1))}, apperr.TooLarge, "1 MiB"},
			{"unknown environment", secrets.CreateInput{Name: "X", Value: secrets.NewValue("v"), Scope: secrets.Scope{Environment: "prod"}}, apperr.Invalid, `unknown environment "prod"; create it first or use one of: development, production, staging`},
			{"bad host", secrets.CreateInput{Name: "X", Value: secrets.NewValue("v"), AllowedHosts: []string{"https://x.com/a"}}, apperr.Invalid, "no scheme, no path"},
		}
		for _, c := range cases {
			_, _, err := s.Create(ctx, "a", c.in)
			e, ok := apperr.As(err)
			if !ok || e.Kind != c.kind || !strings.Contains(e.Message, c.want) {
				t.Errorf("%s: got %v, want kind %d containing %q", c.name, err, c.kind, c.want)
			}
		}
		if _, _, err := s.Create(ctx, "a", secrets.CreateInput{Name: "X", Value: secrets.NewValue("v"), Scope: secrets.Scope{Project: "nope"}}); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `project "nope" not found`) {
			t.Errorf("unknown project: %v", err)
		}
		_, _, err := s.Create(ctx, "a", secrets.CreateInput{Name: "DUP", Value: secrets.NewValue("other-value-12345")})
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), `secret "DUP" already exists in organization`) {
			t.Errorf("duplicate: %v", err)
		}
		// The same name in another scope is fine; after delete it can be created again.
		m := create(t, s, "DUP", "x-value-123456789", secrets.Scope{Project: "billing"})
		if err := s.Delete(ctx, "a", m.ID); err != nil {
			t.Fatal(err)
		}
		create(t, s, "DUP", "y-value-123456789", secrets.Scope{Project: "billing"})
		// Weak values are accepted with a warning.
		w, warns, err := s.Create(ctx, "a", secrets.CreateInput{Name: "WEAK", Value: secrets.NewValue("1234")})
		if err != nil || !w.Weak || len(warns) != 1 {
			t.Errorf("weak: %+v %v %v", w, warns, err)
		}
	})
}

func TestConcurrentUpdates(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		m := create(t, s, "COUNTER", "value-0-abcdefgh", secrets.Scope{Project: "billing"})
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 1; i <= 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.Update(ctx, "bob", m.ID, secrets.UpdateInput{Value: secrets.NewValue(fmt.Sprintf("value-%d-abcdefgh", i))})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		vs, err := s.Versions(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 51 || vs[0].Version != 51 || !vs[0].Current {
			t.Fatalf("versions: %d, newest %d", len(vs), vs[0].Version)
		}
		for i, v := range vs {
			if v.Version != 51-i {
				t.Fatalf("version %d missing (got %d at %d)", 51-i, v.Version, i)
			}
		}
		got, meta := resolve(t, s, "billing", "", "COUNTER")
		if meta.Version != 51 || !strings.HasPrefix(got, "value-") {
			t.Fatalf("current = v%d", meta.Version)
		}
		recs, _ := s.Audit(ctx, secrets.AuditQuery{Secret: m.ID, Limit: 1000})
		updates := 0
		for _, r := range recs {
			if r.Action == secrets.ActionUpdate {
				updates++
			}
		}
		if updates != 50 {
			t.Errorf("audited updates = %d", updates)
		}
	})
}

func TestTransplantAndTamperFail(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		a := create(t, s, "API_TOKEN", "token-a-9f8e7d6c5b", secrets.Scope{Project: "billing", Environment: "production"})
		b := create(t, s, "OTHER", "token-b-1a2b3c4d5e", secrets.Scope{Project: "billing", Environment: "production"})
		// Copy a's ciphertext and wrapped key into b's row.
		var src struct {
			Ciphertext []byte
			WrappedKey []byte
		}
		db.Table("secret_versions").Select("ciphertext, wrapped_key").Where("secret_id = ?", a.ID).Scan(&src)
		db.Table("secret_versions").Where("secret_id = ?", b.ID).Updates(map[string]any{"ciphertext": src.Ciphertext, "wrapped_key": src.WrappedKey})
		_, _, err := s.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: "OTHER"})
		want := `secret "OTHER" (project billing, environment production) version 1 cannot be decrypted: wrong master key or tampered data (key id k1)`
		if !errors.Is(err, secrets.ErrDecrypt) || err.Error() != want {
			t.Fatalf("transplant: got %v\nwant %s", err, want)
		}
		// Only the ciphertext moved (data key stays b's): still fails.
		var bk []byte
		db.Table("secret_versions").Select("wrapped_key").Where("secret_id = ?", a.ID).Row().Scan(&bk)
		// One flipped bit anywhere in a's ciphertext or wrapped key fails.
		for _, col := range []string{"ciphertext", "wrapped_key"} {
			for _, pos := range []int{0, 1, 13, -1} {
				var orig []byte
				db.Table("secret_versions").Select(col).Where("secret_id = ?", a.ID).Row().Scan(&orig)
				mod := bytes.Clone(orig)
				i := pos
				if i < 0 {
					i = len(mod) - 1
				}
				mod[i] ^= 0x01
				db.Table("secret_versions").Where("secret_id = ?", a.ID).Update(col, mod)
				_, _, err := s.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: "API_TOKEN"})
				if !errors.Is(err, secrets.ErrDecrypt) || !strings.Contains(err.Error(), `secret "API_TOKEN"`) {
					t.Errorf("flip %s[%d]: %v", col, i, err)
				}
				db.Table("secret_versions").Where("secret_id = ?", a.ID).Update(col, orig)
			}
		}
		if v, _ := resolve(t, s, "billing", "production", "API_TOKEN"); v != "token-a-9f8e7d6c5b" {
			t.Fatal("restore failed")
		}
		// Identical values give different ciphertexts (fresh data key, nonce).
		c1 := create(t, s, "SAME1", "same-value-abcdef123", secrets.Scope{})
		c2 := create(t, s, "SAME2", "same-value-abcdef123", secrets.Scope{})
		var x, y []byte
		db.Table("secret_versions").Select("ciphertext").Where("secret_id = ?", c1.ID).Row().Scan(&x)
		db.Table("secret_versions").Select("ciphertext").Where("secret_id = ?", c2.ID).Row().Scan(&y)
		if bytes.Equal(x, y) || len(x) == 0 {
			t.Error("identical values give identical ciphertexts")
		}
		// Decrypt failures are audited, without values.
		recs, _ := s.Audit(ctx, secrets.AuditQuery{Secret: "OTHER"})
		if len(recs) == 0 || recs[0].Action != secrets.ActionDecryptFailure {
			t.Errorf("decrypt failure not audited: %+v", recs)
		}
	})
}

func TestWrongMasterKey(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		create(t, s, "API_TOKEN", "token-a-9f8e7d6c5b", secrets.Scope{Project: "billing", Environment: "production"})
		wrong := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k1:"+key2)})
		if w := wrong.CheckKeys(ctx); len(w) == 0 || !strings.Contains(w[0], "does not open") {
			t.Errorf("CheckKeys with a wrong key: %v", w)
		}
		_, _, err := wrong.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: "API_TOKEN"})
		want := `secret "API_TOKEN" (project billing, environment production) version 1 cannot be decrypted: wrong master key or tampered data (key id k1)`
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
		missing := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2)})
		_, _, err = missing.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: "API_TOKEN"})
		if !errors.Is(err, secrets.ErrDecrypt) || !strings.Contains(err.Error(), `key id "k1" is not in the keyring (it has: k2)`) {
			t.Fatalf("missing key: %v", err)
		}
		if w := missing.CheckKeys(ctx); len(w) == 0 || !strings.Contains(w[0], `"k1", which is not in the keyring`) {
			t.Errorf("CheckKeys with a missing key: %v", w)
		}
	})
}

func TestRotation1000(t *testing.T) {
	if testing.Short() {
		t.Skip("rotates 1,000 secrets: skipped in -short mode")
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testRotation1000(t, b.Config(t)) })
	}
}

func testRotation1000(t *testing.T, cfg store.Config) {
	{
		db := storetest.Open(t, cfg, schema.All())
		s := setup(t, db)
		const n = 1000
		ins := make([]secrets.CreateInput, n)
		want := map[string]string{}
		scopes := []secrets.Scope{{}, {Environment: "production"}, {Project: "billing"}, {Project: "billing", Environment: "production"}}
		for i := range ins {
			name := fmt.Sprintf("S%04d", i)
			val := fmt.Sprintf("value-%04d-%s", i, secrets.NewKey())
			ins[i] = secrets.CreateInput{Name: name, Value: secrets.NewValue(val), Scope: scopes[i%4]}
			want[name] = val
		}
		start := time.Now()
		if err := s.Import(ctx, "alice", ins); err != nil {
			t.Fatal(err)
		}
		imported := time.Since(start)
		// Rotate to k2, in batches of 300 (4 batches).
		rotating := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2+",k1:"+key1)})
		start = time.Now()
		res, err := rotating.Rotate(ctx, "admin", secrets.RotateOptions{Batch: 300})
		rotated := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rewrapped != n || res.Batches != 4 || res.Remaining != 0 || res.From["k1"] != n {
			t.Fatalf("rotate: %+v", res)
		}
		// Again: nothing left to do (resumable, idempotent).
		if res, err := rotating.Rotate(ctx, "admin", secrets.RotateOptions{Batch: 300}); err != nil || res.Rewrapped != 0 {
			t.Fatalf("second rotate: %+v %v", res, err)
		}
		// Restart: a new connection pool, a new keyring without the old key.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = storetest.Open(t, cfg, schema.All())
		after := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2)})
		if w := after.CheckKeys(ctx); len(w) != 0 {
			t.Errorf("CheckKeys after rotation: %v", w)
		}
		start = time.Now()
		got, err := after.ResolvedValues(ctx, "billing", "production")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: import %d secrets %v, rotate %v, decrypt all after restart %v", db.Dialect, n, imported, rotated, time.Since(start))
		if len(got) != n {
			t.Fatalf("resolved %d values, want %d", len(got), n)
		}
		for name, v := range want {
			if got[name].Reveal() != v {
				t.Fatalf("%s does not resolve to its value after rotation", name)
			}
		}
		for i := 0; i < n; i += 97 {
			name := fmt.Sprintf("S%04d", i)
			if v, _ := resolve(t, after, "billing", "production", name); v != want[name] {
				t.Fatalf("%s: wrong value", name)
			}
		}
	}
}

func TestRotationResumes(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		for i := range 10 {
			create(t, s, fmt.Sprintf("R%d", i), fmt.Sprintf("resume-value-%d-abcdef", i), secrets.Scope{})
		}
		// A rotation stopped after its first batch (as by a crash), then
		// resumed. In between, both keys are needed and everything decrypts.
		rot := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2+",k1:"+key1)})
		res, err := rot.Rotate(ctx, "admin", secrets.RotateOptions{Batch: 3, MaxBatches: 1})
		if err != nil || res.Rewrapped != 3 || res.Remaining != 7 {
			t.Fatalf("partial rotate: %+v %v", res, err)
		}
		for i := range 10 {
			if v, _ := resolve(t, rot, "", "", fmt.Sprintf("R%d", i)); v != fmt.Sprintf("resume-value-%d-abcdef", i) {
				t.Fatal("wrong value during rotation")
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := rot.Rotate(cctx, "admin", secrets.RotateOptions{}); err == nil || !strings.Contains(err.Error(), "run it again to resume") {
			t.Fatalf("cancelled rotate: %v", err)
		}
		res, err = rot.Rotate(ctx, "admin", secrets.RotateOptions{Batch: 3})
		if err != nil || res.Remaining != 0 || res.Rewrapped != 7 {
			t.Fatalf("resumed: %+v %v", res, err)
		}
		after := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2)})
		for i := range 10 {
			if v, _ := resolve(t, after, "", "", fmt.Sprintf("R%d", i)); v != fmt.Sprintf("resume-value-%d-abcdef", i) {
				t.Fatal("wrong value after resumed rotation")
			}
		}
	})
}

func TestDeleteWipesAndAudits(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		m := create(t, s, "GONE", "gone-value-abcdef123", secrets.Scope{Environment: "staging"})
		if _, _, err := s.Update(ctx, "bob", m.ID, secrets.UpdateInput{Value: secrets.NewValue("gone-value-2-abcdef")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "bob", m.ID); err != nil {
			t.Fatal(err)
		}
		var n int64
		db.Table("secret_versions").Where("secret_id = ? AND (ciphertext IS NOT NULL OR wrapped_key IS NOT NULL OR wiped = ?)", m.ID, false).Count(&n)
		if n != 0 {
			t.Fatalf("%d versions not wiped", n)
		}
		if _, _, err := s.Resolve(ctx, secrets.Access{Environment: "staging", Name: "GONE"}); !errors.Is(err, secrets.ErrUnknownSecret) {
			t.Fatalf("deleted secret resolves: %v", err)
		}
		if err := s.Delete(ctx, "bob", m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		recs, _ := s.Audit(ctx, secrets.AuditQuery{Secret: m.ID})
		var actions []string
		for _, r := range recs {
			actions = append(actions, r.Action)
		}
		if strings.Join(actions, ",") != "delete,update,create" {
			t.Errorf("audit actions: %v", actions)
		}
	})
}

func TestRunResolverCachesAndAudits(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		create(t, s, "K", "run-cache-value-123", secrets.Scope{Project: "billing"})
		rr := s.NewRunResolver("billing", "production", "run-7")
		for range 5 {
			for _, block := range []string{"a", "b"} {
				v, _, err := rr.Resolve(ctx, block, "K", secrets.Scope{})
				if err != nil || v.Reveal() != "run-cache-value-123" {
					t.Fatal(err)
				}
			}
		}
		recs, _ := s.Audit(ctx, secrets.AuditQuery{Secret: "K"})
		resolves := 0
		for _, r := range recs {
			if r.Action == secrets.ActionResolve {
				resolves++
				if r.RunID != "run-7" || r.Version != 1 || r.ScopeLabel != "project" || r.RunProject != "billing" {
					t.Errorf("record %+v", r)
				}
			}
		}
		if resolves != 2 {
			t.Errorf("resolve records = %d, want 2 (one per block)", resolves)
		}
		if _, err := rr.RedactionValues(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestValueNeverPrints(t *testing.T) {
	v := secrets.NewValue("s3cr3t-canary")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v, "m", map[string]any{"v": v})
	j, _ := json.Marshal(struct{ V secrets.Value }{v})
	hidden := struct {
		name string
		v    secrets.Value
	}{"n", v}
	out := fmt.Sprintf("%v %s %q %x %d %+v %#v", v, v, v, v, v, v, v) + v.String() + buf.String() + string(j) +
		fmt.Sprintf("%v %+v %#v", hidden, hidden, hidden)
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, fmt.Sprintf("%x", "s3cr3t")) {
		t.Fatalf("value printed: %s", out)
	}
	if v.Reveal() != "s3cr3t-canary" {
		t.Fatal("Reveal")
	}
}

func TestParseKeyring(t *testing.T) {
	kr := keyring(t, " k2:"+key2+" , k1:"+key1)
	if kr.PrimaryID() != "k2" || strings.Join(kr.IDs(), ",") != "k2,k1" {
		t.Fatalf("ids %v", kr.IDs())
	}
	if keyring(t, key1).PrimaryID() != "default" {
		t.Fatal("bare key id")
	}
	for spec, want := range map[string]string{
		"":                           "empty",
		"k1:ab!c":                    "not valid base64",
		"k1:" + key1[:20]:            "bytes, want 32",
		"k1:" + key1 + ",k1:" + key2: "appears twice",
		"bad id!:" + key1:            "key id must be",
	} {
		_, err := secrets.ParseKeyring(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
		if err != nil && strings.Contains(err.Error(), key1[:10]) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	kr, src, err := secrets.LoadKeyring(secrets.KeyConfig{DataDir: dir, Generate: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "master.key")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || src != path {
		t.Fatalf("key file: %v %v %s", st, err, src)
	}
	if !strings.Contains(logs.String(), "generated a master key file") {
		t.Errorf("generation not logged: %s", logs.String())
	}
	again, _, err := secrets.LoadKeyring(secrets.KeyConfig{DataDir: dir, Generate: true, Logger: log})
	if err != nil || again.PrimaryID() != kr.PrimaryID() {
		t.Fatal("key file not reused")
	}
	// PostgreSQL: no key, no generation.
	_, _, err = secrets.LoadKeyring(secrets.KeyConfig{DataDir: t.TempDir(), Logger: log})
	if !errors.Is(err, secrets.ErrNoMasterKey) || !strings.Contains(err.Error(), "HUSHFLOW_MASTER_KEY is required with PostgreSQL") {
		t.Fatalf("no key on postgres: %v", err)
	}
	// A key missing from the file is to be added to the file.
	if kr.Source() != "the key file "+path {
		t.Errorf("source %q", kr.Source())
	}
	// The variable wins over the file, and says that it does.
	logs.Reset()
	kr, src, err = secrets.LoadKeyring(secrets.KeyConfig{MasterKey: "k9:" + key1, DataDir: dir, Generate: true, Logger: log})
	if err != nil || kr.PrimaryID() != "k9" || src != "HUSHFLOW_MASTER_KEY" || kr.Source() != "HUSHFLOW_MASTER_KEY" {
		t.Fatalf("env key: %v %v", kr, err)
	}
	if !strings.Contains(logs.String(), "HUSHFLOW_MASTER_KEY is set: the key file is not read") || !strings.Contains(logs.String(), path) {
		t.Errorf("an ignored key file not logged: %s", logs.String())
	}
	// An explicit file.
	f := filepath.Join(t.TempDir(), "k")
	os.WriteFile(f, []byte("# comment\nk3:"+key2+"\nk1:"+key1+"\n"), 0o600)
	kr, _, err = secrets.LoadKeyring(secrets.KeyConfig{KeyFile: f})
	if err != nil || strings.Join(kr.IDs(), ",") != "k3,k1" {
		t.Fatalf("key file: %v %v", kr, err)
	}
}

// A run's load never falls back to a less specific secret when the current
// version of the more specific one is missing: it fails and says so.
func TestLoadMissingVersionFails(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		s := setup(t, db)
		create(t, s, "TOKEN", "org-value-123456", secrets.Scope{})
		p := create(t, s, "TOKEN", "project-value-123456", secrets.Scope{Project: "billing"})
		create(t, s, "OTHER", "other-value-123456", secrets.Scope{Project: "billing"})
		loaded, err := s.NewRunResolver("billing", "production", "run-1").Load(ctx)
		if err != nil || len(loaded) != 2 {
			t.Fatalf("load: %d %v", len(loaded), err)
		}
		for _, l := range loaded {
			if l.Meta.Name == "TOKEN" && (l.Value.Reveal() != "project-value-123456" || l.Meta.Scope.Label() != "project") {
				t.Fatalf("TOKEN loaded from %s", l.Meta.Scope.Label())
			}
		}
		if err := db.Exec("DELETE FROM secret_versions WHERE secret_id = ?", p.ID).Error; err != nil {
			t.Fatal(err)
		}
		_, err = s.NewRunResolver("billing", "production", "run-2").Load(ctx)
		if err == nil || !strings.Contains(err.Error(), "1 of 2 current versions are missing") {
			t.Fatalf("load with a missing version: %v", err)
		}
	})
}

// With a Batcher, reads are audited through it: every record lands, and a
// read returns only once its record is stored.
func TestAuditThroughBatcher(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		b := store.NewBatcher(db)
		defer b.Close()
		s := setup(t, db, func(c *secrets.Config) { c.Batcher = b })
		create(t, s, "K", "batched-value-123", secrets.Scope{Project: "billing"})
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rr := s.NewRunResolver("billing", "production", fmt.Sprintf("run-%d", i))
				if _, err := rr.Load(ctx); err != nil {
					t.Error(err)
				}
				if v, _, err := rr.Resolve(ctx, "b", "K", secrets.Scope{}); err != nil || v.Reveal() != "batched-value-123" {
					t.Error(err)
				}
				var n int64
				db.Model(&secrets.AuditRecord{}).Where("run_id = ?", fmt.Sprintf("run-%d", i)).Count(&n)
				if n != 2 {
					t.Errorf("run-%d: %d audit records right after its reads, want 2", i, n)
				}
			}()
		}
		wg.Wait()
	})
}

// A run's load is recorded with its first audited read, in the same
// commit (PostgreSQL: the same transaction id), or by Flush when it reads
// nothing; never twice, and never lost to a read that failed.
func TestLoadRecordedWithFirstRead(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		b := store.NewBatcher(db)
		defer b.Close()
		s := setup(t, db, func(c *secrets.Config) { c.Batcher = b })
		create(t, s, "K", "load-with-read-123", secrets.Scope{Project: "billing"})
		records := func(run string) (loads, reads int64) {
			t.Helper()
			db.Model(&secrets.AuditRecord{}).Where("run_id = ? AND action = ?", run, secrets.ActionRedactionLoad).Count(&loads)
			db.Model(&secrets.AuditRecord{}).Where("run_id = ? AND action = ?", run, secrets.ActionResolve).Count(&reads)
			return loads, reads
		}
		rr := s.NewRunResolver("billing", "production", "run-read")
		if _, err := rr.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if l, r := records("run-read"); l != 0 || r != 0 {
			t.Fatalf("after the load: %d load and %d read records, want none yet", l, r)
		}
		// A read of an unknown name records nothing, and keeps the load's
		// record for the next read.
		if _, _, err := rr.Resolve(ctx, "a", "NOPE", secrets.Scope{}); !errors.Is(err, secrets.ErrUnknownSecret) {
			t.Fatalf("unknown: %v", err)
		}
		if _, _, err := rr.Resolve(ctx, "a", "K", secrets.Scope{}); err != nil {
			t.Fatal(err)
		}
		if l, r := records("run-read"); l != 1 || r != 1 {
			t.Fatalf("after the read: %d load and %d read records, want 1 and 1", l, r)
		}
		if db.Dialect == store.Postgres {
			var txids []string
			db.Raw("SELECT DISTINCT xmin::text FROM secret_audit WHERE run_id = ?", "run-read").Scan(&txids)
			if len(txids) != 1 {
				t.Errorf("the load and the read were committed by %d transactions, want 1", len(txids))
			}
		}
		if err := rr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if l, _ := records("run-read"); l != 1 {
			t.Fatalf("Flush after a read: %d load records, want 1", l)
		}
		// A run that reads nothing: Flush records its load, once.
		quiet := s.NewRunResolver("billing", "production", "run-quiet")
		if _, err := quiet.Load(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := quiet.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if l, r := records("run-quiet"); l != 1 || r != 0 {
			t.Fatalf("a run without reads: %d load and %d read records, want 1 and 0", l, r)
		}
	})
}
