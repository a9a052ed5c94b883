package flows

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
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
// key columns and its sealed column, and the AADs a row's blob may be
// bound to (checkpoints of the first format are bound to another).
var sealedColumns = []struct {
	table, keys, column string
	aads                func(key []string) [][]byte
}{
	{"run_checkpoints", "run_id, block", "output", func(k []string) [][]byte {
		return [][]byte{model.CheckpointAAD(2, k[0], k[1]), model.CheckpointAAD(1, k[0], k[1])}
	}},
	{"runs", "id", "input_sealed", func(k []string) [][]byte { return [][]byte{model.InputAAD(k[0])} }},
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
		var last []string // the keyset of the last row read
		for maxBatches <= 0 || batches < maxBatches {
			batches++
			after, args := "", []any{len(prefix), prefix}
			if last != nil {
				if sc.table == "runs" {
					after, args = " AND id > ?", append(args, last[0])
				} else {
					after, args = " AND (run_id > ? OR (run_id = ? AND block > ?))", append(args, last[0], last[0], last[1])
				}
			}
			var rows []struct {
				RunID, Block, ID string
				Output           []byte
				InputSealed      []byte
			}
			q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IS NOT NULL AND substr(%s, 1, ?) <> ?%s ORDER BY %s LIMIT %d",
				sc.keys, sc.column, sc.table, sc.column, sc.column, after, sc.keys, rewrapBatch)
			if err := db.Raw(q, args...).Scan(&rows).Error; err != nil {
				return res, store.Translate(err)
			}
			for _, r := range rows {
				key, blob := []string{r.RunID, r.Block}, r.Output
				if sc.table == "runs" {
					key, blob = []string{r.ID}, r.InputSealed
				}
				last = key
				var out []byte
				var err error
				for _, aad := range sc.aads(key) {
					if out, err = kr.RewrapBlob(aad, blob); err == nil {
						break
					}
				}
				if err != nil {
					if len(res.Errors) < 10 {
						res.Errors = append(res.Errors, fmt.Sprintf("%s %v: %v", sc.table, key, err))
					}
					continue
				}
				if bytes.Equal(out, blob) {
					continue
				}
				where, wargs := "id = ?", []any{key[0]}
				if sc.table == "run_checkpoints" {
					where, wargs = "run_id = ? AND block = ?", []any{key[0], key[1]}
				}
				u := db.Exec(fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s AND %s = ?", sc.table, sc.column, where, sc.column),
					append(append([]any{out}, wargs...), blob)...)
				if u.Error != nil {
					return res, store.Translate(u.Error)
				}
				if sc.table == "runs" {
					res.Inputs += int(u.RowsAffected)
				} else {
					res.Checkpoints += int(u.RowsAffected)
				}
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
