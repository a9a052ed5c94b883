package secrets_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// TestNoPlaintextInSQL captures the text and every parameter of every
// statement the store sends (SECURITY.md case 37: values are encrypted
// before they reach the ORM) and finds no canary in them.
func TestNoPlaintextInSQL(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
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
					fmt.Fprint(&sql, v)
				}
			}
			sql.WriteByte('\n')
		}
		cb := db.Callback()
		for name, p := range map[string]interface {
			Register(string, func(*gorm.DB)) error
		}{"create": cb.Create(), "update": cb.Update(), "query": cb.Query(), "delete": cb.Delete(), "row": cb.Row(), "raw": cb.Raw()} {
			if err := p.Register("test:capture_"+name, capture); err != nil {
				t.Fatal(err)
			}
		}
		s := setup(t, db)
		canary := `sqlcanary-&<>"%\'` + secrets.NewKey()
		canary2 := "sqlcanary2-" + secrets.NewKey()
		m := create(t, s, "SQL_CANARY", canary, secrets.Scope{Project: "billing"})
		if _, _, err := s.Update(ctx, "a", m.ID, secrets.UpdateInput{Value: secrets.NewValue(canary2)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Import(ctx, "a", []secrets.CreateInput{{Name: "IMPORTED", Value: secrets.NewValue(canary)}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := resolve(t, s, "billing", "", "SQL_CANARY"); v != canary2 {
			t.Fatal("resolve")
		}
		rr := s.NewRunResolver("billing", "", "r")
		if _, err := rr.RedactionValues(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k2:"+key2+",k1:"+key1)}).Rotate(ctx, "a", secrets.RotateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a", m.ID); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		text := sql.String()
		mu.Unlock()
		if !strings.Contains(text, "INSERT INTO") || !strings.Contains(text, "SQL_CANARY") {
			t.Fatalf("capture saw nothing useful: %.300s", text)
		}
		for _, v := range []string{canary, canary2} {
			for _, f := range forms(v) {
				if strings.Contains(text, f) {
					t.Fatal("a value (or an encoding of it) was a SQL parameter")
				}
			}
		}
	})
}

func forms(v string) []string {
	b := []byte(v)
	return []string{v, base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b)}
}
