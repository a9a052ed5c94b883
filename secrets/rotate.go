package secrets

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// RotateResult counts what a rotation did.
type RotateResult struct {
	// Primary is the key id every data key is now wrapped with.
	Primary string `json:"primary"`
	// Rewrapped is the number of data keys moved to the primary key.
	Rewrapped int `json:"rewrapped"`
	// Batches is the number of transactions used.
	Batches int `json:"batches"`
	// From counts rewrapped data keys by their previous key id.
	From map[string]int `json:"from"`
	// Remaining is the number of live versions still wrapped by another
	// key (0 after a complete rotation).
	Remaining int64 `json:"remaining"`
}

// DefaultRotateBatch is the number of data keys rewrapped per transaction.
const DefaultRotateBatch = 500

// RotateOptions tune a rotation.
type RotateOptions struct {
	// Batch is the number of data keys rewrapped per transaction
	// (default DefaultRotateBatch).
	Batch int
	// MaxBatches stops after that many batches (0: no limit), to spread a
	// large rotation over time; run Rotate again to go on.
	MaxBatches int
}

// Rotate rewraps, under the keyring's primary key, every data key wrapped
// by another key, batch by batch, each batch in its own transaction. Only
// wrapped data keys change: ciphertexts stay as they are and no plaintext
// value is decrypted or written. It is resumable: a rotation interrupted
// (crash, error, cancel) is finished by running it again, since progress is
// the key id stored on each row. Once Remaining is 0, the old keys can be
// removed from the keyring.
func (s *Store) Rotate(ctx context.Context, actor string, opts RotateOptions) (RotateResult, error) {
	batch := opts.Batch
	if batch <= 0 {
		batch = DefaultRotateBatch
	}
	primary := s.keys.PrimaryID()
	res := RotateResult{Primary: primary, From: map[string]int{}}
	db := s.db.WithContext(ctx)
	var failure error
	for failure == nil && (opts.MaxBatches <= 0 || res.Batches < opts.MaxBatches) {
		var vers []versionRow
		err := db.Select("secret_id", "version", "wrapped_key", "key_id").
			Where("wiped = ? AND key_id <> ?", false, primary).
			Order("secret_id, version").Limit(batch).Find(&vers).Error
		if err != nil {
			failure = store.Translate(err)
			break
		}
		if len(vers) == 0 {
			break
		}
		n := 0
		err = s.withRetry(ctx, func(tx *gorm.DB) error {
			n = 0
			for i := range vers {
				v := &vers[i]
				id := identity{SecretID: v.SecretID, Version: v.Version}
				sl, reason := s.keys.rewrap(id, v.sealed())
				if reason != "" {
					return s.rotateError(ctx, v, reason)
				}
				// Compare-and-swap on key_id: a concurrent rotation that
				// got there first wins, nothing is rewrapped twice.
				r := tx.Model(&versionRow{}).Where("secret_id = ? AND version = ? AND key_id = ?", v.SecretID, v.Version, v.KeyID).
					Updates(map[string]any{"wrapped_key": sl.WrappedKey, "key_id": sl.KeyID})
				if r.Error != nil {
					return r.Error
				}
				if r.RowsAffected > 0 {
					n++
				}
			}
			return nil
		})
		if err != nil {
			failure = store.Translate(err)
			break
		}
		for i := range vers {
			res.From[vers[i].KeyID]++
		}
		res.Rewrapped += n
		res.Batches++
		if err := ctx.Err(); err != nil {
			failure = err
		}
	}
	_ = db.Model(&versionRow{}).Where("wiped = ? AND key_id <> ?", false, primary).Count(&res.Remaining).Error
	detail := fmt.Sprintf("rewrapped %d data keys to key %s (from %s) in %d batches; %d remaining",
		res.Rewrapped, primary, fromList(res.From), res.Batches, res.Remaining)
	if failure != nil {
		detail += "; stopped: " + failure.Error()
	}
	rec := &AuditRecord{ID: newID(), At: s.now(), Actor: actor, Action: ActionRotate, Detail: truncate(detail, 500)}
	if err := s.db.WithContext(context.WithoutCancel(ctx)).Create(rec).Error; err != nil && failure == nil {
		failure = fmt.Errorf("record rotation: %w", store.Translate(err))
	}
	if failure != nil {
		return res, fmt.Errorf("key rotation stopped after %d data keys (run it again to resume): %w", res.Rewrapped, failure)
	}
	s.log.Info("key rotation", "primary", primary, "rewrapped", res.Rewrapped, "batches", res.Batches, "remaining", res.Remaining)
	return res, nil
}

// RecordRunDataRotation audits what a rotation did to the run data sealed
// under the keyring (flows.Service.RewrapSealed): one rotate record with
// the counts, never a value.
func (s *Store) RecordRunDataRotation(ctx context.Context, actor string, checkpoints, inputs int, remaining int64) error {
	detail := fmt.Sprintf("rewrapped the data keys of %d checkpoints of open runs and %d sealed run inputs to key %s; %d remaining",
		checkpoints, inputs, s.keys.PrimaryID(), remaining)
	rec := &AuditRecord{ID: newID(), At: s.now(), Actor: actor, Action: ActionRotate, Detail: detail}
	if err := s.db.WithContext(context.WithoutCancel(ctx)).Create(rec).Error; err != nil {
		return fmt.Errorf("record the rotation of run data: %w", store.Translate(err))
	}
	return nil
}

func fromList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var ids []string
	for id, n := range m {
		ids = append(ids, fmt.Sprintf("%s: %d", id, n))
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}

// rotateError names the secret whose data key cannot be unwrapped.
func (s *Store) rotateError(ctx context.Context, v *versionRow, reason string) error {
	var row secretRow
	if err := s.db.WithContext(ctx).Where("id = ?", v.SecretID).First(&row).Error; err != nil {
		return fmt.Errorf("secret id %s version %d: %s", v.SecretID, v.Version, reason)
	}
	return &DecryptError{Name: row.Name, Scope: row.scope(), Version: v.Version, KeyID: v.KeyID, Reason: reason}
}

// KeyUsage counts the live versions wrapped by each key id.
func (s *Store) KeyUsage(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		KeyID string
		N     int64
	}
	err := s.db.WithContext(ctx).Model(&versionRow{}).Select("key_id, COUNT(*) AS n").
		Where("wiped = ?", false).Group("key_id").Scan(&rows).Error
	if err != nil {
		return nil, store.Translate(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.KeyID] = r.N
	}
	return out, nil
}

// CheckKeys returns warnings about the keyring against the stored data,
// for the server's start: key ids in use but missing from the keyring, and
// keys that do not open a stored data key (a wrong master key). It never
// fails the start: a wrong key is reported again, naming the secret, at
// first use.
func (s *Store) CheckKeys(ctx context.Context) []string {
	usage, err := s.KeyUsage(ctx)
	if err != nil {
		return []string{"cannot check the master keys: " + err.Error()}
	}
	var warns []string
	ids := make([]string, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !s.keys.Has(id) {
			warns = append(warns, fmt.Sprintf("%d secret versions use key id %q, which is not in the keyring: they cannot be decrypted until that key is added to %s",
				usage[id], id, s.keys.Source()))
			continue
		}
		var v versionRow
		if err := s.db.WithContext(ctx).Select("secret_id", "version", "wrapped_key", "key_id").
			Where("wiped = ? AND key_id = ?", false, id).First(&v).Error; err != nil {
			continue
		}
		if _, reason := s.keys.unwrap(id, identity{SecretID: v.SecretID, Version: v.Version}, v.WrappedKey); reason != "" {
			warns = append(warns, fmt.Sprintf("master key %q does not open the stored data keys (a wrong key in %s?): secrets wrapped by it cannot be decrypted", id, s.keys.Source()))
		}
	}
	for id := range usage {
		// Only a key the keyring has can be rotated away from; a missing
		// one is reported above.
		if id != s.keys.PrimaryID() && s.keys.Has(id) {
			warns = append(warns, fmt.Sprintf("some secret versions are wrapped by a key other than the primary %q: run `hushflow keys rotate` before removing old keys", s.keys.PrimaryID()))
			break
		}
	}
	return warns
}
