package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Environment variables that configure the keyring.
const (
	// EnvMasterKey holds the keyring: a bare base64 key (id "default"), or
	// comma-separated id:base64 entries, the first being the primary.
	EnvMasterKey = "HUSHFLOW_MASTER_KEY"
	// EnvMasterKeyFile names a file holding the same format (entries
	// separated by commas or newlines; lines starting with # are comments).
	EnvMasterKeyFile = "HUSHFLOW_MASTER_KEY_FILE"
	// KeyFileName is the key file generated in the data dir for the
	// embedded SQLite database when no key is configured.
	KeyFileName = "master.key"
	// DefaultKeyID is the id of a bare key (no "id:" prefix).
	DefaultKeyID = "default"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Keyring holds the key-encryption keys (KEKs). The primary key wraps new
// data keys and is the target of rotation; the others only unwrap. A
// Keyring is never stored in the database and is safe for concurrent use
// (it is not changed after it is built).
type Keyring struct {
	primary string
	keys    map[string][]byte
	order   []string
	// source is where LoadKeyring found it, for messages ("" for
	// HUSHFLOW_MASTER_KEY).
	source string
}

// Source says where the keyring comes from, for a message that asks to
// add a key to it: HUSHFLOW_MASTER_KEY, or the key file's path.
func (kr *Keyring) Source() string {
	if kr.source == "" {
		return EnvMasterKey
	}
	return "the key file " + kr.source
}

// ParseKeyring parses the HUSHFLOW_MASTER_KEY format. Errors say which
// entry is wrong and never contain key material.
func ParseKeyring(s string) (*Keyring, error) {
	kr := &Keyring{keys: map[string][]byte{}}
	var entries []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		entries = append(entries, strings.Split(line, ",")...)
	}
	n := 0
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		n++
		id, b64, ok := strings.Cut(e, ":")
		if !ok {
			id, b64 = DefaultKeyID, e
		}
		id = strings.TrimSpace(id)
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("master key entry %d: key id must be 1 to 32 letters, digits, '_', '.' or '-'", n)
		}
		key, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("master key entry %d (id %s): %v", n, id, err)
		}
		if _, dup := kr.keys[id]; dup {
			return nil, fmt.Errorf("master key entry %d: key id %s appears twice", n, id)
		}
		kr.keys[id] = key
		kr.order = append(kr.order, id)
		if kr.primary == "" {
			kr.primary = id
		}
	}
	if kr.primary == "" {
		return nil, errors.New("master key is empty: set a base64 key of 32 bytes (hushflow keys generate prints one)")
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("key is %d bytes, want %d (base64 of 32 random bytes; hushflow keys generate prints one)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("key is not valid base64 (hushflow keys generate prints one)")
}

// NewKey returns a fresh random key in the keyring's text format
// (base64 of 32 random bytes).
func NewKey() string {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// PrimaryID is the id of the key that wraps new data keys.
func (kr *Keyring) PrimaryID() string { return kr.primary }

// IDs lists the key ids, primary first.
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.order...) }

// Has reports whether the keyring holds key id.
func (kr *Keyring) Has(id string) bool { _, ok := kr.keys[id]; return ok }

func (kr *Keyring) key(id string) ([]byte, bool) {
	k, ok := kr.keys[id]
	return k, ok
}

// missingReason explains a key id not in the keyring.
func (kr *Keyring) missingReason(id string) string {
	ids := kr.IDs()
	sort.Strings(ids)
	return fmt.Sprintf("key id %q is not in the keyring (it has: %s); add that key to %s", id, strings.Join(ids, ", "), kr.Source())
}

// KeyConfig says where LoadKeyring finds the keyring.
type KeyConfig struct {
	// MasterKey is the value of HUSHFLOW_MASTER_KEY.
	MasterKey string
	// KeyFile is the value of HUSHFLOW_MASTER_KEY_FILE.
	KeyFile string
	// DataDir is where the embedded database lives; with Generate the key
	// file master.key is created there when nothing else is configured.
	DataDir string
	// Generate allows creating DataDir/master.key (the embedded SQLite
	// database). It is false for PostgreSQL: a missing key is an error.
	Generate bool
	Logger   *slog.Logger
}

// LoadKeyring builds the keyring from, in order: MasterKey, KeyFile, an
// existing DataDir/master.key, or (with Generate) a new DataDir/master.key
// written with mode 0600 and announced in the log. Without Generate and
// without a key it returns an error wrapping ErrNoMasterKey.
func LoadKeyring(cfg KeyConfig) (*Keyring, string, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MasterKey != "" {
		kr, err := ParseKeyring(cfg.MasterKey)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvMasterKey, err)
		}
		ignored := cfg.KeyFile
		if ignored == "" && cfg.DataDir != "" {
			if p := filepath.Join(cfg.DataDir, KeyFileName); fileExists(p) {
				ignored = p
			}
		}
		if ignored != "" {
			log.Warn(EnvMasterKey+" is set: the key file is not read (put the same keys in it, or remove it, so that a start without the variable finds them)", "path", ignored)
		}
		return kr, EnvMasterKey, nil
	}
	if cfg.KeyFile != "" {
		kr, err := readKeyFile(cfg.KeyFile, log)
		return kr, cfg.KeyFile, err
	}
	path := filepath.Join(cfg.DataDir, KeyFileName)
	if cfg.DataDir != "" {
		if _, err := os.Stat(path); err == nil {
			kr, err := readKeyFile(path, log)
			return kr, path, err
		}
	}
	if !cfg.Generate {
		return nil, "", noKeyError{}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			kr, err := readKeyFile(path, log)
			return kr, path, err
		}
		return nil, "", fmt.Errorf("create key file %s: %w", path, err)
	}
	content := "# Hushflow master key (keep it secret, back it up apart from the database)\nk1:" + NewKey() + "\n"
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, "", fmt.Errorf("write key file %s: %w", path, err)
	}
	log.Warn("generated a master key file for the embedded database; back it up apart from the database: "+
		"without it no secret can be decrypted", "path", path, "mode", "0600")
	kr, err := readKeyFile(path, log)
	return kr, path, err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readKeyFile(path string, log *slog.Logger) (*Keyring, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("master key file is readable by other users; chmod 600 it", "path", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	kr, err := ParseKeyring(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	kr.source = path
	return kr, nil
}

// noKeyError is the refusal to start on PostgreSQL without a key.
type noKeyError struct{}

func (noKeyError) Error() string {
	return EnvMasterKey + " is required with PostgreSQL: set it to a base64 key of 32 bytes " +
		"(`hushflow keys generate` prints one) or set " + EnvMasterKeyFile + " to a file holding it; " +
		"keep the key outside the database and its backups (a key is generated automatically only for the embedded SQLite database)"
}

func (noKeyError) Unwrap() error { return ErrNoMasterKey }
