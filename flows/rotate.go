package flows

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
)

// SealedRewrap counts what a key rotation did to the run data sealed under
// the keyring: the checkpointed block outputs of open runs (a run waiting
// a week keeps them that long) and the real inputs ended runs keep for a
// rerun.
type SealedRewrap struct {
	Checkpoints int `json:"checkpoints"`
	Inputs      int `json:"inputs"`
	// Remaining counts the sealed run data still under another key than
	// the primary one: it could not be rewrapped (Errors says why).
	Remaining int `json:"remaining"`
	// Errors names the first few that could not be rewrapped.
	Errors []string `json:"errors,omitempty"`
}

// Rewrapper moves the data key of sealed data to its primary key
// (*secrets.Keyring).
type Rewrapper interface {
	// RewrapBlob returns blob, sealed with aad, with its data key wrapped
	// by the primary key (blob itself when it already is).
	RewrapBlob(aad, blob []byte) ([]byte, error)
}

// rewrapBatch is the number of rows read at a time.
const rewrapBatch = 500

// RewrapSealed moves to kr's primary key the data key of every sealed
// checkpoint and run input wrapped by another key, so that the old key can
// leave the keyring without stranding a waiting run or a rerun. Like the
// rotation of secret versions it decrypts only data keys, never an
// output or an input, and is resumable: run it again to finish. A row its
// run changed meanwhile is left as the run wrote it (under the primary
// key).
func (s *Service) RewrapSealed(ctx context.Context, kr Rewrapper) (SealedRewrap, error) {
	var res SealedRewrap
	fail := func(what string, err error) {
		res.Remaining++
		if len(res.Errors) < 10 {
			res.Errors = append(res.Errors, what+": "+err.Error())
		}
	}
	db := s.db.WithContext(ctx)
	// Checkpoints, by (run_id, block).
	lastRun, lastBlock := "", ""
	for {
		var rows []struct {
			RunID, Block string
			Output       []byte
		}
		if err := db.Raw(`SELECT run_id, block, output FROM run_checkpoints
WHERE output IS NOT NULL AND (run_id > ? OR (run_id = ? AND block > ?)) ORDER BY run_id, block LIMIT ?`,
			lastRun, lastRun, lastBlock, rewrapBatch).Scan(&rows).Error; err != nil {
			return res, store.Translate(err)
		}
		for _, r := range rows {
			lastRun, lastBlock = r.RunID, r.Block
			// Checkpoints of the first format are bound to another AAD.
			out, err := kr.RewrapBlob(model.CheckpointAAD(2, r.RunID, r.Block), r.Output)
			if err != nil {
				var err1 error
				if out, err1 = kr.RewrapBlob(model.CheckpointAAD(1, r.RunID, r.Block), r.Output); err1 != nil {
					fail(fmt.Sprintf("checkpoint %s of run %s", r.Block, r.RunID), err)
					continue
				}
			}
			if bytes.Equal(out, r.Output) {
				continue
			}
			u := db.Exec("UPDATE run_checkpoints SET output = ? WHERE run_id = ? AND block = ? AND output = ?", out, r.RunID, r.Block, r.Output)
			if u.Error != nil {
				return res, store.Translate(u.Error)
			}
			res.Checkpoints += int(u.RowsAffected)
		}
		if len(rows) < rewrapBatch {
			break
		}
	}
	// Sealed inputs, by run id.
	last := ""
	for {
		var rows []struct {
			ID          string
			InputSealed []byte
		}
		if err := db.Raw(`SELECT id, input_sealed FROM runs WHERE input_sealed IS NOT NULL AND id > ? ORDER BY id LIMIT ?`,
			last, rewrapBatch).Scan(&rows).Error; err != nil {
			return res, store.Translate(err)
		}
		for _, r := range rows {
			last = r.ID
			out, err := kr.RewrapBlob(model.InputAAD(r.ID), r.InputSealed)
			if err != nil {
				fail("the sealed input of run "+r.ID, err)
				continue
			}
			if bytes.Equal(out, r.InputSealed) {
				continue
			}
			u := db.Exec("UPDATE runs SET input_sealed = ? WHERE id = ? AND input_sealed = ?", out, r.ID, r.InputSealed)
			if u.Error != nil {
				return res, store.Translate(u.Error)
			}
			res.Inputs += int(u.RowsAffected)
		}
		if len(rows) < rewrapBatch {
			break
		}
	}
	return res, nil
}
