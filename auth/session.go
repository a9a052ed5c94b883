package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// SessionTTL is how long a browser session lasts after sign-in.
const SessionTTL = 12 * time.Hour

// Session is a signed-in browser: the web UI exchanges an API token for a
// session once, and the browser then holds only an opaque session id in an
// HttpOnly cookie. The id is stored as a SHA-256 hash; the CSRF token is
// stored as is because the UI asks for it again after a reload.
type Session struct {
	Hash      string    `gorm:"primaryKey;size:64"`
	UserID    string    `gorm:"index;size:36;not null"`
	TokenID   string    `gorm:"index;size:36"` // empty for the configured admin token
	CSRF      string    `gorm:"size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"index;not null"`
}

// NewSession signs a browser in as p (a principal that authenticated with
// a token). It returns the session id for the cookie and the CSRF token.
func (s *Service) NewSession(ctx context.Context, p *Principal) (id, csrf string, err error) {
	id, err = randomString(32)
	if err != nil {
		return "", "", err
	}
	csrf, err = randomString(32)
	if err != nil {
		return "", "", err
	}
	now := s.now()
	tokenID := p.TokenID
	if tokenID == "" && s.adminHash != nil {
		// Opened with HUSHFLOW_ADMIN_TOKEN: the session lasts only as long
		// as that token is configured (SessionPrincipal).
		tokenID = envSession(s.adminHash)
	}
	sess := &Session{Hash: hashToken(id), UserID: p.UserID, TokenID: tokenID, CSRF: csrf,
		CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	if err := store.Translate(s.db.WithContext(ctx).Create(sess).Error); err != nil {
		return "", "", err
	}
	// Expired sessions go on sign-in, so the table does not grow.
	s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&Session{})
	return id, csrf, nil
}

// SessionPrincipal returns who session id acts as, and its CSRF token. A
// missing or expired session, a deleted user, or a session whose token has
// since been revoked or has expired is ErrUnauthenticated.
func (s *Service) SessionPrincipal(ctx context.Context, id string) (*Principal, string, error) {
	if id == "" || len(id) > 128 {
		return nil, "", ErrUnauthenticated
	}
	var sess Session
	err := s.db.WithContext(ctx).Where("hash = ?", hashToken(id)).First(&sess).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, "", ErrUnauthenticated
		}
		return nil, "", store.Translate(err)
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) {
		return nil, "", ErrUnauthenticated
	}
	switch {
	case sess.TokenID == "" || strings.HasPrefix(sess.TokenID, envSessionPrefix):
		// The configured admin token's session: ended when the token is
		// removed or replaced (the hardening advice is to unset it).
		if s.adminHash == nil || sess.TokenID != "" && sess.TokenID != envSession(s.adminHash) {
			return nil, "", ErrUnauthenticated
		}
		sess.TokenID = ""
	default:
		var t Token
		if err := s.db.WithContext(ctx).Where("id = ?", sess.TokenID).First(&t).Error; err != nil {
			return nil, "", ErrUnauthenticated
		}
		if t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
			return nil, "", ErrUnauthenticated
		}
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", sess.UserID).First(&u).Error; err != nil {
		return nil, "", ErrUnauthenticated
	}
	return &Principal{UserID: u.ID, Name: u.Name, Admin: u.Admin, TokenID: sess.TokenID}, sess.CSRF, nil
}

// DeleteSession signs session id out; an unknown id is not an error.
func (s *Service) DeleteSession(ctx context.Context, id string) error {
	return store.Translate(s.db.WithContext(ctx).Where("hash = ?", hashToken(id)).Delete(&Session{}).Error)
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// envSessionPrefix marks the session of the configured admin token; what
// follows it identifies that token (a part of its hash).
const envSessionPrefix = "env:"

// envSession is the TokenID of a session opened with the admin token whose
// sha256 is hash (36 characters, the column's size).
func envSession(hash []byte) string {
	return envSessionPrefix + hex.EncodeToString(hash)[:32]
}
