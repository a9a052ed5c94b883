package secrets

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/internal/startstop"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
)

// Observer keeps Config.Observe (the server log's redactor) knowing every
// live value: every version of every secret that still holds ciphertext,
// whichever process wrote it. ObserveAll loads them at start; the watch
// polls a change counter of the versions (their number and the number
// wiped: both only grow, since version rows are never removed) and loads
// what is new when it moves, so a value created or updated on another
// replica is known within one interval.
type Observer struct {
	startstop.Base
	s *Store
	// every is the poll interval.
	every time.Duration
	last  changeCount
	seen  map[versionKey]bool
}

type versionKey struct {
	id      string
	version int
}

type changeCount struct {
	Versions int64
	Wiped    int64
}

// NewObserver returns the observer of s's values, polling every interval
// (1s when zero) once started.
func (s *Store) NewObserver(every time.Duration) *Observer {
	if every <= 0 {
		every = time.Second
	}
	return &Observer{s: s, every: every, seen: map[versionKey]bool{}}
}

// ObserveAll passes every live value not passed yet to Config.Observe and
// returns how many it passed. A value that does not decrypt is left out
// (logged and audited as a decrypt_failure). The load is audited as one
// redaction_load record (actor "server-log").
func (o *Observer) ObserveAll(ctx context.Context) (int, error) {
	s := o.s
	if s.observe == nil {
		return 0, nil
	}
	c, err := s.changeCount(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.eachLive(ctx, "", "server-log",
		func(id string, version int) bool { return o.seen[versionKey{id, version}] },
		func(row *secretRow, version int, _ Value) { // open passed it to Observe
			o.seen[versionKey{row.ID, version}] = true
			n++
		})
	if err != nil {
		return n, err
	}
	if n > 0 {
		rec := AuditRecord{ID: newID(), At: s.now(), Actor: "server-log", Action: ActionRedactionLoad,
			Detail: strconv.Itoa(n) + " secret values loaded into the server log's redactor"}
		if err := s.db.WithContext(ctx).Create(&rec).Error; err != nil {
			return n, fmt.Errorf("record redaction load: %w", store.Translate(err))
		}
	}
	o.last = c
	return n, nil
}

// Watch starts the poll (until ctx is done or Stop).
func (o *Observer) Watch(ctx context.Context) {
	o.Start(ctx, func(ctx context.Context) {
		t := beat.NewTicker(o.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				t.Next()
			}
			c, err := o.s.changeCount(ctx)
			if err != nil || c == o.last {
				continue // a database error: the next tick tries again
			}
			if _, err := o.ObserveAll(ctx); err != nil && ctx.Err() == nil {
				o.s.log.Warn("load new secret values into the server log's redactor", "err", err)
			}
		}
	})
}

// changeCount reads the change counter of the secret versions.
func (s *Store) changeCount(ctx context.Context) (changeCount, error) {
	var c changeCount
	err := s.db.WithContext(ctx).Raw(`SELECT COUNT(*) AS versions, COALESCE(SUM(CASE WHEN wiped THEN 1 ELSE 0 END), 0) AS wiped FROM secret_versions`).
		Scan(&c).Error
	return c, store.Translate(err)
}

// eachLive decrypts, as actor, every live version (one that still holds
// ciphertext) of the secrets project can see in any environment (its own,
// and those of the organization and of environments; with project "", of
// every secret) that skip does not leave out, and passes it to fn. A value
// that does not decrypt is left out (open logs and audits it).
func (s *Store) eachLive(ctx context.Context, project, actor string, skip func(id string, version int) bool, fn func(row *secretRow, version int, v Value)) error {
	q := s.db.WithContext(ctx).Table("secrets s").
		Select("s.*, v.version AS v_version, v.ciphertext AS v_ciphertext, v.wrapped_key AS v_wrapped_key, v.key_id AS v_key_id, v.wiped AS v_wiped").
		Joins("JOIN secret_versions v ON v.secret_id = s.id AND v.wiped = ?", false).
		Where("s.deleted_at IS NULL")
	if project != "" {
		q = q.Where("s.project IN ?", []string{"", project})
	}
	var joined []loadRow
	if err := q.Order("s.name, v.version DESC").Scan(&joined).Error; err != nil {
		return store.Translate(err)
	}
	for i := range joined {
		j := &joined[i]
		if skip != nil && skip(j.Row.ID, *j.VVersion) {
			continue
		}
		ver := versionRow{SecretID: j.Row.ID, Version: *j.VVersion, Ciphertext: j.VCiphertext, WrappedKey: j.VWrappedKey, KeyID: j.VKeyID}
		v, _, err := s.open(ctx, &j.Row, &ver, actor, "", "")
		if err != nil {
			continue
		}
		fn(&j.Row, ver.Version, v)
	}
	return nil
}

// Masker returns a redactor of every live value (all versions that still
// hold ciphertext) of the secrets project can see in any environment (see
// eachLive); with project "", of every secret, masked without names (a
// caller may not see them). The API masks the text users type into what
// it returns (descriptions, flow definitions, installation configs) with
// it.
// It is rebuilt when the change counter moves (one cheap query per call).
// Like the log redactor's (ObserveAll), its loads hold values in this
// process only to mask them; they are not audited per load (a record per
// secret change and project would bury the reads that matter).
func (s *Store) Masker(ctx context.Context, project string) (*redact.Redactor, error) {
	m, err := s.masker(ctx, project)
	return m.red, err
}

// StrongMasker is Masker without the weak values (short or of low
// entropy, see redact.Weak): the values that, found in text a user typed,
// surely are a pasted secret and not a common word.
func (s *Store) StrongMasker(ctx context.Context, project string) (*redact.Redactor, error) {
	m, err := s.masker(ctx, project)
	return m.strong, err
}

func (s *Store) masker(ctx context.Context, project string) (masker, error) {
	c, err := s.changeCount(ctx)
	if err != nil {
		return masker{}, err
	}
	s.maskMu.Lock()
	m, ok := s.maskers[project]
	s.maskMu.Unlock()
	if ok && m.count == c {
		return m, nil
	}
	var names, values, strongNames, strongValues []string
	err = s.eachLive(ctx, project, "api", nil, func(row *secretRow, _ int, v Value) {
		name := row.Name
		if project == "" {
			name = "" // every project's values: masked without their names
		}
		names, values = append(names, name), append(values, v.Reveal())
		if !redact.Weak(v.Reveal()) {
			strongNames, strongValues = append(strongNames, name), append(strongValues, v.Reveal())
		}
	})
	if err != nil {
		return masker{}, err
	}
	red, strong := redact.New(), redact.New()
	red.AddPairs(names, values)
	strong.AddPairs(strongNames, strongValues)
	m = masker{count: c, red: red, strong: strong}
	s.maskMu.Lock()
	if s.maskers == nil || len(s.maskers) >= maxMaskers {
		s.maskers = map[string]masker{}
	}
	s.maskers[project] = m
	s.maskMu.Unlock()
	return m, nil
}

// maxMaskers bounds the maskers kept (one per project asked for).
const maxMaskers = 256

type masker struct {
	count       changeCount
	red, strong *redact.Redactor
}
