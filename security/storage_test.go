package security_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// Storage crypto: cases 31-37 of SECURITY.md, through the API on both
// databases, tampering with rows by SQL. The envelope layer is proven in
// depth by secrets/envelope_internal_test.go and secrets/secrets_test.go;
// case 37 also by secrets/sqlparams_test.go.

// keyOf is a keyring entry "id:base64" of 32 bytes of b.
func keyOf(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func withKey(k string) func(*app.Config) {
	return func(c *app.Config) { c.MasterKey = k; c.RateLimit = -1 }
}

// checksum is a JavaScript expression and its Go twin: a 32-bit hash of a
// value, so that a run can prove it read the right value without
// showing it.
const checksumJS = "Array.from(%s).reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7)"

func checksum(v string) float64 {
	h := uint32(7)
	for _, r := range v { // canaries are ASCII
		h = h*31 + uint32(r)
	}
	return float64(h)
}

// versionRow reads the stored blobs of a secret's version.
type blobs struct {
	Ciphertext []byte
	WrappedKey []byte
	KeyID      string
}

func readBlobs(t *testing.T, db *store.DB, id string, version int) blobs {
	t.Helper()
	var b blobs
	if err := db.Raw("SELECT ciphertext, wrapped_key, key_id FROM secret_versions WHERE secret_id = ? AND version = ?", id, version).Row().
		Scan(&b.Ciphertext, &b.WrappedKey, &b.KeyID); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeBlobs(t *testing.T, db *store.DB, id string, version int, b blobs) {
	t.Helper()
	if err := db.Exec("UPDATE secret_versions SET ciphertext = ?, wrapped_key = ?, key_id = ? WHERE secret_id = ? AND version = ?",
		b.Ciphertext, b.WrappedKey, b.KeyID, id, version).Error; err != nil {
		t.Fatal(err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x01
	return c
}

// readFlow saves a flow that reads secret name and returns its checksum.
func (e *env) readFlow(flow, name string) {
	e.t.Helper()
	e.flow(flow, code("c", "return "+fmt.Sprintf(checksumJS, "secrets."+name)))
}

func TestCase31_Confidentiality(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		k, pem := canary("c31"), pemCanary("c31")
		m := e.secret("K", k)
		e.plant(pem)
		e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PEM", "file_base64": base64.StdEncoding.EncodeToString([]byte(pem)), "project": "p"})
		e.secret("ENVK", canary("c31env"), map[string]any{"environment": "development"})
		k2 := canary("c31v2")
		e.plant(k2)
		e.must(200, "PUT", "/api/v1/secrets/"+m["id"].(string), map[string]any{"value": k2})
		e.flow("read", code("c", "console.log(secrets.K, secrets.PEM, secrets.ENVK); return secrets.K.length"))
		e.runStatus("read", "succeeded", nil)
		extra := map[string]string{}
		if d := pgDump(t, e.s.App.DB); d != "" {
			extra["pg_dump"] = d
		}
		if e.s.App.DB.Dialect == store.SQLite {
			// The database file, its WAL and anything else in the data
			// directory, byte for byte.
			dir := e.s.App.Config.DataDir
			ents, _ := os.ReadDir(dir)
			for _, ent := range ents {
				if ent.IsDir() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
				if err == nil {
					extra["file "+ent.Name()] = string(b)
				}
			}
			if _, ok := extra["file hushflow.db"]; !ok {
				t.Errorf("no database file in %s", dir)
			}
		}
		e.sweep(extra)
	}, noRateLimit)
}

func TestCase32_Integrity(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		k := canary("c32")
		id := e.secret("K", k)["id"].(string)
		e.readFlow("read", "K")
		if r, _ := e.runStatus("read", "succeeded", nil); r["output"] != checksum(k) {
			t.Fatalf("untampered read: %v", r["output"])
		}
		db := e.s.App.DB
		orig := readBlobs(t, db, id, 1)
		for name, b := range map[string]blobs{
			"ciphertext format byte": {flip(orig.Ciphertext, 0), orig.WrappedKey, orig.KeyID},
			"ciphertext nonce":       {flip(orig.Ciphertext, 3), orig.WrappedKey, orig.KeyID},
			"ciphertext body":        {flip(orig.Ciphertext, 1+12+2), orig.WrappedKey, orig.KeyID},
			"ciphertext tag":         {flip(orig.Ciphertext, -1), orig.WrappedKey, orig.KeyID},
			"ciphertext truncated":   {orig.Ciphertext[:len(orig.Ciphertext)-1], orig.WrappedKey, orig.KeyID},
			"ciphertext empty":       {[]byte{}, orig.WrappedKey, orig.KeyID},
			"wrapped key nonce":      {orig.Ciphertext, flip(orig.WrappedKey, 2), orig.KeyID},
			"wrapped key body":       {orig.Ciphertext, flip(orig.WrappedKey, 1+12+5), orig.KeyID},
			"wrapped key tag":        {orig.Ciphertext, flip(orig.WrappedKey, -1), orig.KeyID},
			"key id":                 {orig.Ciphertext, orig.WrappedKey, "k0"},
		} {
			writeBlobs(t, db, id, 1, b)
			r, msg := e.runStatus("read", "failed", nil)
			if r["output"] != nil {
				t.Errorf("%s: the run produced output %v", name, r["output"])
			}
			contains(t, name, msg, `secret "K"`, "cannot be decrypted")
			prev := e.do("POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "secrets.K", "environment": "development"})
			if prev.Status == 200 {
				t.Errorf("%s: preview answered 200: %s", name, prev.Body)
			}
		}
		writeBlobs(t, db, id, 1, orig)
		if r, _ := e.runStatus("read", "succeeded", nil); r["output"] != checksum(k) {
			t.Errorf("restored read: %v", r["output"])
		}
		audit := e.must(200, "GET", "/api/v1/audit?project=p", nil)
		contains(t, "audit", js(audit), "decrypt_failure")
		e.sweep(nil)
	}, noRateLimit)
}

func TestCase33_Transplant(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.must(201, "POST", "/api/v1/projects", map[string]string{"name": "b"})
		a, same, other := canary("c33a"), canary("c33s"), canary("c33o")
		aID := e.secret("A", a)["id"].(string)
		sameID := e.secret("SAME", same)["id"].(string)
		envID := e.secret("ENVA", canary("c33e"), map[string]any{"project": "p", "environment": "development"})["id"].(string)
		e.plant(other)
		otherID := e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "A", "value": other, "project": "b"})["id"].(string)
		v2 := canary("c33v2")
		e.plant(v2)
		e.must(200, "PUT", "/api/v1/secrets/"+aID, map[string]any{"value": v2})
		db := e.s.App.DB
		src := readBlobs(t, db, aID, 1) // project p, version 1 of A
		for name, target := range map[string]struct {
			id, secret, project string
			version             int
		}{
			"another secret":      {sameID, "SAME", "p", 1},
			"another environment": {envID, "ENVA", "p", 1},
			"another project":     {otherID, "A", "b", 1},
			"another version":     {aID, "A", "p", 2},
		} {
			orig := readBlobs(t, db, target.id, target.version)
			writeBlobs(t, db, target.id, target.version, src)
			e.project = target.project
			flow := "t-" + strings.ReplaceAll(name, " ", "-")
			e.readFlow(flow, target.secret)
			r, msg := e.runStatus(flow, "failed", nil)
			contains(t, name, msg, "cannot be decrypted", `secret "`+target.secret+`"`)
			if r["output"] != nil {
				t.Errorf("%s: output %v", name, r["output"])
			}
			writeBlobs(t, db, target.id, target.version, orig)
			e.project = "p"
		}
		e.sweep(nil)
	}, noRateLimit)
}

func TestCase34_FreshDataKeys(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		v := canary("c34")
		ids := []string{e.secret("A", v)["id"].(string), e.secret("B", v)["id"].(string),
			e.secret("C", v, map[string]any{"environment": "production"})["id"].(string)}
		e.must(200, "PUT", "/api/v1/secrets/"+ids[0], map[string]any{"value": v}) // same value, new version
		seen := map[string]string{}
		check := func(what string, b []byte) {
			if prev, ok := seen[string(b)]; ok {
				t.Errorf("%s repeats %s", what, prev)
			}
			seen[string(b)] = what
		}
		for i, id := range ids {
			for ver := 1; ver <= 2; ver++ {
				if i > 0 && ver == 2 {
					continue
				}
				b := readBlobs(t, e.s.App.DB, id, ver)
				check(fmt.Sprintf("ciphertext %d/%d", i, ver), b.Ciphertext)
				check(fmt.Sprintf("wrapped key %d/%d", i, ver), b.WrappedKey)
				check(fmt.Sprintf("nonce %d/%d", i, ver), b.Ciphertext[1:13])
				check(fmt.Sprintf("key nonce %d/%d", i, ver), b.WrappedKey[1:13])
			}
		}
		if len(seen) != 16 {
			t.Errorf("%d distinct blobs, want 16", len(seen))
		}
		e.sweep(nil)
	}, noRateLimit)
}

func TestCase35_Rotation(t *testing.T) {
	apptest.SkipShort(t)
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			old, nw := keyOf("k1", 1), keyOf("k2", 2)
			s1 := apptest.Start(t, dbc, withKey(old), func(c *app.Config) { c.NoWorkers = true })
			e := newEnv(t, s1)
			vals := map[string]string{}
			for i := range 5 {
				n := fmt.Sprintf("S%d", i)
				vals[n] = canary("c35" + n)
				e.secret(n, vals[n])
			}
			// The new key is primary; the old one stays readable.
			s2 := apptest.Start(t, dbc, withKey(nw+","+old), func(c *app.Config) { c.NoWorkers = true })
			// A rotation that stops after one batch of one (as a crash
			// would), then resumes.
			part := s2.Must(200, "POST", "/api/v1/keys/rotate", map[string]any{"batch_size": 1, "max_batches": 1})
			if part["remaining"] == 0.0 {
				t.Fatalf("partial rotation did everything: %v", part)
			}
			st := s2.Must(200, "GET", "/api/v1/keys", nil)
			contains(t, "key status after a partial rotation", js(st["versions_by_key"]), `"k1"`, `"k2"`)
			full := s2.Must(200, "POST", "/api/v1/keys/rotate", nil)
			if full["remaining"] != 0.0 {
				t.Fatalf("rotation: %v", full)
			}
			st = s2.Must(200, "GET", "/api/v1/keys", nil)
			if strings.Contains(js(st["versions_by_key"]), `"k1"`) {
				t.Errorf("k1 still in use: %v", st)
			}
			// Restart with the new key only: everything decrypts.
			s3 := apptest.Start(t, dbc, withKey(nw))
			e3 := &env{t: t, s: s3, project: "p", canary: e.canary}
			for n, v := range vals {
				e3.readFlow("read-"+strings.ToLower(n), n)
				if r, _ := e3.runStatus("read-"+strings.ToLower(n), "succeeded", nil); r["output"] != checksum(v) {
					t.Errorf("%s after rotation: %v", n, r["output"])
				}
			}
			e3.sweep(map[string]string{"rotation responses": js([]any{part, full, st})})
		})
	}
}

func TestCase36_MissingOrWrongKey(t *testing.T) {
	apptest.SkipShort(t)
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(storetest.EnvURL) == "" {
			t.Skip(storetest.EnvURL + " not set")
		}
		dbc := storetest.PostgresConfig(t)
		// No key at all: refused, never a generated key.
		_, err := app.New(context.Background(), app.Config{DatabaseURL: dbc.DatabaseURL, DataDir: t.TempDir(), LogOutput: &apptest.SyncBuffer{}, SandboxPath: os.Args[0]})
		if !errors.Is(err, secrets.ErrNoMasterKey) {
			t.Fatalf("PostgreSQL without a key: %v", err)
		}
		s := apptest.Start(t, dbc, withKey(keyOf("k1", 1)), func(c *app.Config) { c.NoWorkers = true })
		e := newEnv(t, s)
		k := canary("c36pg")
		e.secret("K", k)
		wrongKey(t, dbc, e)
	})
	t.Run("sqlite", func(t *testing.T) {
		dbc := storetest.SQLiteConfig(t)
		// The embedded default generates a key file for an empty database...
		s := apptest.Start(t, dbc, func(c *app.Config) { c.NoWorkers = true; c.RateLimit = -1 })
		e := newEnv(t, s)
		k := canary("c36sq")
		e.secret("K", k)
		if _, err := os.Stat(filepath.Join(dbc.DataDir, "master.key")); err != nil {
			t.Fatalf("no generated key file: %v", err)
		}
		// ...but never once the database holds encrypted values.
		keyFile, _ := os.ReadFile(filepath.Join(dbc.DataDir, "master.key"))
		if err := os.Remove(filepath.Join(dbc.DataDir, "master.key")); err != nil {
			t.Fatal(err)
		}
		_, err := app.New(context.Background(), app.Config{DataDir: dbc.DataDir, LogOutput: &apptest.SyncBuffer{}, SandboxPath: os.Args[0]})
		if err == nil || !strings.Contains(err.Error(), "master.key") {
			t.Fatalf("SQLite with encrypted values and no key: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dbc.DataDir, "master.key")); err == nil {
			t.Errorf("a new key file was generated over existing data")
		}
		_ = os.WriteFile(filepath.Join(dbc.DataDir, "master.key"), keyFile, 0o600)
		wrongKey(t, dbc, e)
	})
}

// wrongKey starts servers on dbc with a wrong key and with a keyring that
// lacks the key id: each refuses to decrypt, clearly, and shows no value.
func wrongKey(t *testing.T, dbc store.Config, e *env) {
	for name, c := range map[string]struct{ key, want string }{
		"wrong key":   {keyOf("k1", 9), "wrong master key or tampered data"},
		"missing key": {keyOf("k7", 1), "not in the keyring"},
	} {
		s := apptest.Start(t, dbc, withKey(c.key))
		w := &env{t: t, s: s, project: "p", canary: e.canary}
		w.readFlow("read-"+strings.ReplaceAll(name, " ", "-"), "K")
		r, msg := w.runStatus("read-"+strings.ReplaceAll(name, " ", "-"), "failed", nil)
		contains(t, name, msg, `secret "K"`, "cannot be decrypted", c.want)
		if r["output"] != nil {
			t.Errorf("%s: output %v", name, r["output"])
		}
		keys := w.must(200, "GET", "/api/v1/keys", nil)
		if len(keys["warnings"].([]any)) == 0 {
			t.Errorf("%s: the key status shows no warning: %v", name, keys)
		}
		t.Logf("%s: %s; warnings %v", name, msg, keys["warnings"])
		w.sweep(nil)
		// The next server must not share the database with this one's
		// workers (they would run its flows with this keyring).
		s.Stop()
	}
}

func TestCase37_NoPlaintextSQLParameter(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		var sql strings.Builder
		capture := func(tx *gorm.DB) {
			mu.Lock()
			defer mu.Unlock()
			sql.WriteString(tx.Statement.SQL.String())
			for _, v := range tx.Statement.Vars {
				if b, ok := v.([]byte); ok {
					sql.Write(b)
				} else {
					fmt.Fprint(&sql, " ", v)
				}
			}
			sql.WriteByte('\n')
		}
		// The server runs without workers or observer polls: nothing else
		// uses the database while the callbacks are registered.
		cb := e.s.App.DB.Callback()
		for name, p := range map[string]interface {
			Register(string, func(*gorm.DB)) error
		}{"create": cb.Create(), "update": cb.Update(), "query": cb.Query(), "delete": cb.Delete(), "row": cb.Row(), "raw": cb.Raw()} {
			if err := p.Register("security:capture_"+name, capture); err != nil {
				t.Fatal(err)
			}
		}
		k, k2, pem := canary("c37"), canary("c37b"), pemCanary("c37")
		m := e.secret("K", k, map[string]any{"allowed_hosts": []string{"api.example.com"}})
		e.plant(k2, pem)
		e.must(200, "PUT", "/api/v1/secrets/"+m["id"].(string), map[string]any{"value": k2})
		e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PEM", "file_base64": base64.StdEncoding.EncodeToString([]byte(pem)), "project": "p"})
		e.must(200, "POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "secrets.K + secrets.PEM", "environment": "development"})
		e.must(200, "POST", "/api/v1/keys/rotate", nil)
		e.must(204, "DELETE", "/api/v1/secrets/"+m["id"].(string), nil)
		mu.Lock()
		text := sql.String()
		mu.Unlock()
		if !strings.Contains(text, "INSERT INTO") || !strings.Contains(text, "secret_versions") {
			t.Fatalf("the capture saw no insert: %.300s", text)
		}
		apptest.AssertAbsent(t, "SQL statements and parameters", text, e.canary...)
		e.sweep(nil)
	}, func(c *app.Config) {
		// No worker, and no poll of the log redactor's observer while
		// the callbacks are registered (gorm's registration is not safe
		// beside a query; the observer's tick raced it).
		c.NoWorkers, c.RateLimit, c.SecretsPoll = true, -1, time.Hour
	})
}
