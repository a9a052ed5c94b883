package exec

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Directory names. An execution's directories are named
// "<server pid>-<run id>-<block id>-<random>" so that CleanStale can tell
// those of a dead server from those of a live one.
const (
	secretsDirName = "hushflow-secrets"
	workDirName    = "hushflow-exec"
	shmDir         = "/dev/shm"
)

// dirs are the directories of one execution.
type dirs struct {
	secrets string // mounted secrets, mode 0700, files 0400
	work    string // the command's scratch working directory
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.]+`)

// newDirs creates the directories of one execution of block in run.
func newDirs(scratch, run, block string) (*dirs, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%d-%s-%s-%s", os.Getpid(), clip(unsafeName.ReplaceAllString(run, "_")),
		clip(unsafeName.ReplaceAllString(block, "_")), hex.EncodeToString(rnd[:]))
	wbase, err := privateDir(filepath.Join(scratchRoot(scratch), workDirName))
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	d := &dirs{work: filepath.Join(wbase, name)}
	// The base may be removed by another execution that found it empty
	// between SecretsBase and Mkdir: try again.
	for try := 0; ; try++ {
		sbase, err := SecretsBase(scratch)
		if err != nil {
			return nil, err
		}
		d.secrets = filepath.Join(sbase, name)
		err = os.Mkdir(d.secrets, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || try == 3 {
			return nil, fmt.Errorf("secrets directory: %w", err)
		}
	}
	if err := os.Mkdir(d.work, 0o700); err != nil {
		_ = os.RemoveAll(d.secrets)
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	return d, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// remove deletes both directories; the secrets go first.
func (d *dirs) remove() error {
	err := os.RemoveAll(d.secrets)
	// The per-server base on /dev/shm goes too when it is empty, so that
	// tmpfs does not collect one empty directory per data dir.
	_ = os.Remove(filepath.Dir(d.secrets))
	if werr := os.RemoveAll(d.work); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("remove the execution's directories: %w", err)
	}
	return nil
}

// writeSecretFile writes value to dir/key with mode 0400, bytes as they
// are.
func writeSecretFile(dir, key, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, key), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o400)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func scratchRoot(scratch string) string {
	if scratch == "" {
		return os.TempDir()
	}
	if abs, err := filepath.Abs(scratch); err == nil {
		return abs
	}
	return scratch
}

// SecretsBase returns (creating it) the directory holding the per-
// execution secrets directories of a server whose scratch directory is
// scratch: /dev/shm/hushflow-secrets/<hash of scratch> when /dev/shm is a
// usable tmpfs (so that secrets never reach a disk), otherwise
// <scratch>/hushflow-secrets. The hash keeps servers with different
// scratch directories apart.
func SecretsBase(scratch string) (string, error) {
	root := scratchRoot(scratch)
	if p, ok := shmBase(root); ok {
		return p, nil
	}
	p, err := privateDir(filepath.Join(root, secretsDirName))
	if err != nil {
		return "", fmt.Errorf("secrets directory: %w", err)
	}
	return p, nil
}

func shmBase(root string) (string, bool) {
	if fi, err := os.Stat(shmDir); err != nil || !fi.IsDir() {
		return "", false
	}
	sum := sha256.Sum256([]byte(root))
	top, err := privateDir(filepath.Join(shmDir, secretsDirName))
	if err != nil {
		return "", false
	}
	p, err := privateDir(filepath.Join(top, hex.EncodeToString(sum[:8])))
	if err != nil {
		return "", false
	}
	return p, true
}

// privateDir creates dir (mode 0700) or checks that the existing one is a
// real directory of ours with mode 0700, so that nobody else can swap or
// read what is inside.
func privateDir(dir string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is not a private directory of this user (want a directory of mode 0700)", dir)
	}
	return dir, nil
}

// CleanStale removes the per-execution directories (mounted secrets and
// scratch) that a server with scratch directory scratch left behind when
// it was killed: those whose server process is gone. Call it at start.
// It returns how many directories it removed.
func CleanStale(scratch string) (int, error) {
	root := scratchRoot(scratch)
	bases := []string{filepath.Join(root, secretsDirName), filepath.Join(root, workDirName)}
	if p, ok := shmBase(root); ok {
		bases = append(bases, p)
	}
	n := 0
	var errs []error
	for _, b := range bases {
		ents, err := os.ReadDir(b)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, e := range ents {
			pid, _, ok := strings.Cut(e.Name(), "-")
			if !ok {
				continue
			}
			if p, err := strconv.Atoi(pid); err != nil || alive(p) {
				continue
			}
			if err := os.RemoveAll(filepath.Join(b, e.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	if p, ok := shmBase(root); ok {
		_ = os.Remove(p) // when empty
	}
	return n, errors.Join(errs...)
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
