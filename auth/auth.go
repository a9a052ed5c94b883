// Package auth keeps users and their API tokens. Tokens are random,
// shown once at creation and stored only as SHA-256 hashes; a request
// authenticates with `Authorization: Bearer <token>`.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// TokenPrefix starts every Hushflow token, so that scanners (and people)
// recognize one.
const TokenPrefix = "hf_"

// User is a person or a machine that holds tokens.
type User struct {
	ID        string    `gorm:"primaryKey;size:36" json:"id"`
	Name      string    `gorm:"uniqueIndex;size:128;not null" json:"name"`
	Admin     bool      `gorm:"not null;default:false" json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is an API token's metadata; the token itself is never stored.
type Token struct {
	ID         string     `gorm:"primaryKey;size:36" json:"id"`
	UserID     string     `gorm:"index;size:36;not null" json:"user_id"`
	Name       string     `gorm:"size:128;not null" json:"name"`
	Hash       string     `gorm:"uniqueIndex;size:64;not null" json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Principal is who a request acts as.
type Principal struct {
	UserID  string
	Name    string
	Admin   bool
	TokenID string // empty for the configured admin token
}

// Migrations creates the users and tokens tables.
func Migrations() []store.Migration { return store.SQLMigrations(migrationFS, "migrations") }

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrUnauthenticated is returned for a missing, unknown, revoked or expired
// token. The API answers 401 without saying which.
var ErrUnauthenticated = apperr.New(apperr.Unauthenticated, "unauthenticated",
	"missing or invalid token: send Authorization: Bearer <token>")

// Service manages users, tokens and browser sessions.
type Service struct {
	db        *store.DB
	adminHash []byte // sha256 of HUSHFLOW_ADMIN_TOKEN, nil if unset
	now       func() time.Time
	// admin caches the built-in admin user (it is never deleted).
	admin atomic.Pointer[User]
}

// Config is everything a Service needs.
type Config struct {
	// DB holds the users, tokens and sessions (see Migrations).
	DB *store.DB
	// AdminToken, when not empty, is accepted as a token of the built-in
	// "admin" user (HUSHFLOW_ADMIN_TOKEN).
	AdminToken string
	// Now is the clock that creation times and token and session expiry
	// are read from (time.Now when nil). Tests move it forward to expire a
	// token without waiting.
	Now func() time.Time
}

// New returns a Service built from cfg.
func New(cfg Config) *Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// UTC: SQLite compares stored times as text.
	s := &Service{db: cfg.DB, now: func() time.Time { return now().UTC() }}
	if cfg.AdminToken != "" {
		h := sha256.Sum256([]byte(cfg.AdminToken))
		s.adminHash = h[:]
	}
	return s
}

// AdminUser is the name of the built-in organization admin.
const AdminUser = "admin"

// Bootstrap makes sure the built-in admin user exists. When no admin token
// is configured and no token exists at all, it creates one admin token and
// returns it (to be printed once); otherwise it returns "".
func (s *Service) Bootstrap(ctx context.Context) (string, error) {
	admin, err := s.ensureAdmin(ctx)
	if err != nil {
		return "", err
	}
	if s.adminHash != nil {
		return "", nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&Token{}).Count(&n).Error; err != nil {
		return "", store.Translate(err)
	}
	if n > 0 {
		return "", nil
	}
	raw, _, err := s.CreateToken(ctx, admin.ID, "bootstrap", 0)
	return raw, err
}

func (s *Service) ensureAdmin(ctx context.Context) (*User, error) {
	if u := s.admin.Load(); u != nil {
		return u, nil
	}
	var u User
	err := s.db.WithContext(ctx).Where("name = ?", AdminUser).First(&u).Error
	if err == nil {
		s.admin.Store(&u)
		return &u, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, store.Translate(err)
	}
	u = User{ID: newID(), Name: AdminUser, Admin: true, CreatedAt: s.now()}
	if err := store.Translate(s.db.WithContext(ctx).Create(&u).Error); err != nil {
		if errors.Is(err, store.ErrConflict) { // another replica won the race
			return s.ensureAdmin(ctx)
		}
		return nil, err
	}
	return &u, nil
}

// CreateUser adds a user.
func (s *Service) CreateUser(ctx context.Context, name string, admin bool) (*User, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return nil, apperr.Invalidf("invalid_name", "user name must be 1 to 128 characters")
	}
	u := &User{ID: newID(), Name: name, Admin: admin, CreatedAt: s.now()}
	if err := store.Translate(s.db.WithContext(ctx).Create(u).Error); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, store.Conflict("user", name, "", "")
		}
		return nil, err
	}
	return u, nil
}

// GetUser returns a user by id.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	if err := store.Translate(s.db.WithContext(ctx).Where("id = ?", id).First(&u).Error); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, store.NotFound("user", id)
		}
		return nil, err
	}
	return &u, nil
}

// FindUser returns the user whose id, or else whose name, is ref.
func (s *Service) FindUser(ctx context.Context, ref string) (*User, error) {
	u, err := s.GetUser(ctx, ref)
	if !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	var byName User
	if err := store.Translate(s.db.WithContext(ctx).Where("name = ?", ref).First(&byName).Error); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, store.NotFound("user", ref)
		}
		return nil, err
	}
	return &byName, nil
}

// ListUsers lists every user, by name.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	us := []User{}
	return us, store.Translate(s.db.WithContext(ctx).Order("name").Find(&us).Error)
}

// CreateToken makes a token for userID, valid for ttl (0: no expiry). It
// returns the token, shown to the caller once, and its metadata.
func (s *Service) CreateToken(ctx context.Context, userID, name string, ttl time.Duration) (string, *Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return "", nil, apperr.Invalidf("invalid_name", "token name must be 1 to 128 characters")
	}
	if ttl < 0 {
		return "", nil, apperr.Invalidf("invalid_expiry", "expires_in must be positive")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	raw := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	t := &Token{ID: newID(), UserID: userID, Name: name, Hash: hashToken(raw), CreatedAt: s.now()}
	if ttl > 0 {
		exp := t.CreatedAt.Add(ttl)
		t.ExpiresAt = &exp
	}
	if err := store.Translate(s.db.WithContext(ctx).Create(t).Error); err != nil {
		if errors.Is(err, store.ErrNotFound) { // the user (foreign key)
			return "", nil, store.NotFound("user", userID)
		}
		return "", nil, err
	}
	return raw, t, nil
}

// ListTokens lists userID's tokens, newest first.
func (s *Service) ListTokens(ctx context.Context, userID string) ([]Token, error) {
	var ts []Token
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("created_at DESC").Find(&ts).Error
	return ts, store.Translate(err)
}

// RevokeToken revokes token id; revoking a revoked token again does
// nothing. Only its owner or an admin may; others get store.ErrNotFound,
// as for a token that does not exist.
func (s *Service) RevokeToken(ctx context.Context, p *Principal, id string) error {
	q := s.db.WithContext(ctx).Model(&Token{}).Where("id = ?", id)
	if !p.Admin {
		q = q.Where("user_id = ?", p.UserID)
	}
	res := q.Session(&gorm.Session{}).Where("revoked_at IS NULL").Update("revoked_at", s.now())
	if res.Error != nil {
		return store.Translate(res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := q.Count(&n).Error; err != nil {
			return store.Translate(err)
		}
		if n == 0 {
			return store.NotFound("token", id)
		}
	}
	return nil
}

// Authenticate returns the principal of a raw token.
func (s *Service) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" || len(raw) > 256 {
		return nil, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(raw))
	if s.adminHash != nil && subtle.ConstantTimeCompare(h[:], s.adminHash) == 1 {
		u, err := s.ensureAdmin(ctx)
		if err != nil {
			return nil, err
		}
		return &Principal{UserID: u.ID, Name: u.Name, Admin: true}, nil
	}
	var t Token
	err := s.db.WithContext(ctx).Where("hash = ?", hex.EncodeToString(h[:])).First(&t).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrUnauthenticated
		}
		return nil, store.Translate(err)
	}
	now := s.now()
	if t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
		return nil, ErrUnauthenticated
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", t.UserID).First(&u).Error; err != nil {
		if store.IsUnavailable(err) {
			return nil, store.Translate(err) // 503, not 401: the caller may retry
		}
		return nil, ErrUnauthenticated
	}
	// Record last use at most once a minute to keep reads cheap.
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		s.db.WithContext(ctx).Model(&Token{}).Where("id = ?", t.ID).Update("last_used_at", now)
	}
	return &Principal{UserID: u.ID, Name: u.Name, Admin: u.Admin, TokenID: t.ID}, nil
}

func hashToken(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
