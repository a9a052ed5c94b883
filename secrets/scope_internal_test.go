package secrets

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm/schema"
)

// scopeRows scans secretColumns into secretRow.fields by hand: both name
// every column of secrets, in the same order, each into its own field.
func TestSecretColumnsAreAll(t *testing.T) {
	sch, err := schema.Parse(&secretRow{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	var r secretRow
	fields := r.fields()
	cols := strings.Split(secretColumns, ",")
	if len(cols) != len(sch.Fields) || len(fields) != len(sch.Fields) {
		t.Fatalf("secretColumns has %d columns and fields %d destinations; secrets has %d columns", len(cols), len(fields), len(sch.Fields))
	}
	base := reflect.ValueOf(&r).Elem()
	for i, f := range sch.Fields {
		if got := strings.TrimPrefix(strings.TrimSpace(cols[i]), "s."); got != f.DBName {
			t.Errorf("column %d is %s, want %s", i, got, f.DBName)
		}
		if want := base.FieldByIndex(f.StructField.Index).Addr().Interface(); fields[i] != want {
			t.Errorf("destination %d is not the field of %s", i, f.DBName)
		}
	}
}
