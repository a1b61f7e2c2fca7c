// Package dirlock keeps two processes from serving one state directory:
// a witness or a log that shared its state with another instance could
// sign two histories.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock is a held lock on a directory.
type Lock struct{ f *os.File }

// Acquire takes an exclusive lock on dir (through the file dir/.lock),
// failing at once if another process, or another Lock in this one, holds it.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another process; one directory serves one instance", dir)
		}
		return nil, fmt.Errorf("lock %s: %v", path, err)
	}
	return &Lock{f: f}, nil
}

// Release lets another instance use the directory.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the file releases the lock
	l.f = nil
	return err
}
