package flows

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// SealedRewrap counts what a key rotation did to the run data sealed under
// the keyring: the checkpointed block outputs of open runs (a run in a
// durable wait keeps them until it resumes) and the real inputs ended
// runs keep for a rerun.
type SealedRewrap struct {
	Checkpoints int `json:"checkpoints"`
	Inputs      int `json:"inputs"`
	// Remaining counts the sealed run data still under another key than
	// the primary one: not reached yet (MaxBatches), or not rewrapped
	// (Errors says why).
	Remaining int64 `json:"remaining"`
	// Errors names the first few that could not be rewrapped.
	Errors []string `json:"errors,omitempty"`
}

// Rewrapper moves the data key of sealed data to its primary key
// (*secrets.Keyring).
type Rewrapper interface {
	// RewrapBlob returns blob, sealed with aad, with its data key wrapped
	// by the primary key (blob itself when it already is).
	RewrapBlob(aad, blob []byte) ([]byte, error)
	// PrimaryBlobPrefix is how every blob under the primary key begins.
	PrimaryBlobPrefix() []byte
}

// rewrapBatch is the number of rows read at a time.
const rewrapBatch = 500

// sealedColumns are the run data sealed under the keyring: a table, its
// key columns and its sealed column, the AADs a row's blob may be bound
// to (checkpoints of the first format are bound to another), and the
// count of SealedRewrap that its rewrapped rows add to.
var sealedColumns = []struct {
	table  string
	keys   []string
	column string
	aads   func(key []string) [][]byte
	count  func(*SealedRewrap) *int
}{
	{"run_checkpoints", []string{"run_id", "block"}, "output", func(k []string) [][]byte {
		return [][]byte{model.CheckpointAAD(2, k[0], k[1]), model.CheckpointAAD(1, k[0], k[1])}
	}, func(r *SealedRewrap) *int { return &r.Checkpoints }},
	{"runs", []string{"id"}, "input_sealed", func(k []string) [][]byte {
		return [][]byte{model.InputMasksAAD(k[0]), model.InputAAD(k[0])}
	}, func(r *SealedRewrap) *int { return &r.Inputs }},
}

// RewrapSealed moves to kr's primary key the data key of every sealed
// checkpoint and run input wrapped by another key, rewrapBatch rows at a
// time, for at most maxBatches batches (0: all), so that the old key can
// leave the keyring without stranding a waiting run or a rerun. Like the
// rotation of secret versions it decrypts only data keys, never an output
// or an input, reads only the rows left to rewrap, and is resumable: run
// it again to go on. A row its run changed meanwhile is left as the run
// wrote it (under the primary key).
func (s *Service) RewrapSealed(ctx context.Context, kr Rewrapper, maxBatches int) (SealedRewrap, error) {
	var res SealedRewrap
	db := s.db.WithContext(ctx)
	prefix := kr.PrimaryBlobPrefix()
	batches := 0
	for _, sc := range sealedColumns {
		keys := strings.Join(sc.keys, ", ")
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(sc.keys)), ", ")
		// The rows left to rewrap, after the last one read (a row that
		// could not be rewrapped is still left), in key order.
		sel := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IS NOT NULL AND substr(%s, 1, ?) <> ?",
			keys, sc.column, sc.table, sc.column, sc.column)
		next := fmt.Sprintf(" AND (%s) > (%s)", keys, marks)
		order := fmt.Sprintf(" ORDER BY %s LIMIT %d", keys, rewrapBatch)
		update := fmt.Sprintf("UPDATE %s SET %s = ? WHERE (%s) = (%s) AND %s = ?", sc.table, sc.column, keys, marks, sc.column)
		var last []any
		for maxBatches <= 0 || batches < maxBatches {
			batches++
			q, args := sel, []any{len(prefix), prefix}
			if last != nil {
				q, args = q+next, append(args, last...)
			}
			rows, err := readSealed(db, q+order, args, len(sc.keys))
			if err != nil {
				return res, store.Translate(err)
			}
			for _, r := range rows {
				last = r.key
				out, err := rewrapAny(kr, sc.aads(r.strings()), r.blob)
				if err != nil {
					if len(res.Errors) < 10 {
						res.Errors = append(res.Errors, fmt.Sprintf("%s %v: %v", sc.table, r.strings(), err))
					}
					continue
				}
				if bytes.Equal(out, r.blob) {
					continue
				}
				u := db.Exec(update, append(append([]any{out}, r.key...), r.blob)...)
				if u.Error != nil {
					return res, store.Translate(u.Error)
				}
				*sc.count(&res) += int(u.RowsAffected)
			}
			if len(rows) < rewrapBatch {
				break
			}
		}
	}
	n, err := s.SealedElsewhere(ctx, kr)
	res.Remaining = n
	return res, err
}

// sealedRow is a row of a sealed column: its key and its blob.
type sealedRow struct {
	key  []any // strings
	blob []byte
}

func (r sealedRow) strings() []string {
	out := make([]string, len(r.key))
	for i, k := range r.key {
		out[i] = k.(string)
	}
	return out
}

// readSealed runs q, whose columns are nkeys text keys and a blob.
func readSealed(db *gorm.DB, q string, args []any, nkeys int) ([]sealedRow, error) {
	rows, err := db.Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		keys := make([]string, nkeys)
		dest := make([]any, nkeys+1)
		for i := range keys {
			dest[i] = &keys[i]
		}
		var blob []byte
		dest[nkeys] = &blob
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r := sealedRow{blob: blob}
		for _, k := range keys {
			r.key = append(r.key, k)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rewrapAny rewraps blob under the first of aads it was sealed with.
func rewrapAny(kr Rewrapper, aads [][]byte, blob []byte) ([]byte, error) {
	var err error
	for _, aad := range aads {
		var out []byte
		if out, err = kr.RewrapBlob(aad, blob); err == nil {
			return out, nil
		}
	}
	return nil, err
}

// SealedElsewhere counts the sealed run data whose data key another key
// than kr's primary one wraps: what a rotation has yet to rewrap.
func (s *Service) SealedElsewhere(ctx context.Context, kr Rewrapper) (int64, error) {
	prefix := kr.PrimaryBlobPrefix()
	var total int64
	for _, sc := range sealedColumns {
		var n int64
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s IS NOT NULL AND substr(%s, 1, ?) <> ?", sc.table, sc.column, sc.column)
		if err := s.db.WithContext(ctx).Raw(q, len(prefix), prefix).Scan(&n).Error; err != nil {
			return total, store.Translate(err)
		}
		total += n
	}
	return total, nil
}
