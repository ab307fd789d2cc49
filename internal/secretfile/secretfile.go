// Package secretfile reads files that hold secrets, or that decide who is
// trusted, refusing those that other users of the system can get at.
//
// A private key (the ledger's pseudonymization key, the TLS key) that any
// user of the machine can read is as good as published: whoever holds
// the ledger key can match every pseudonym of the ledger to people. A
// tokens file that others can write lets them add a token of their own,
// with the admin scope. So such a file is refused (as ssh refuses a
// private key others can read), naming it, its mode and the chmod that
// fixes it, rather than used or merely warned about in a log nobody reads.
//
// The group may read: a Kubernetes Secret is mounted owned by root with the
// pod's fsGroup as its group (defaultMode 0440 in deploy/kubernetes), and
// that group is the process's own.
//
// The mode is that of the file opened (fstat), so a symlink (a mounted
// Secret's ..data link) is judged by the file it leads to, and a file
// swapped between the check and the read cannot slip through. On Windows,
// where permission bits say nothing of who may read a file, nothing is
// checked.
package secretfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// Masks of the permission bits a file may not have.
const (
	// private: no permission at all for others.
	private fs.FileMode = 0o007
	// unwritable: neither the group nor others may write.
	unwritable fs.FileMode = 0o022
)

// ReadPrivate reads a file holding a secret, refusing it when users other
// than its owner and group may read, write or execute it. what names the
// file in the error ("--ledger-key-file /etc/k"), why says what another
// reader could do with it.
func ReadPrivate(path, what, why string) ([]byte, error) {
	return read(path, private, func(mode fs.FileMode) error { return privateRefusal(what, why, path, mode) })
}

func privateRefusal(what, why, path string, mode fs.FileMode) error {
	return fmt.Errorf("%s is open to other users of the system (mode %04o): %s; "+
		"give it to its owner alone (chmod 600 %s), or to its owner and group (chmod 640)", what, mode.Perm(), why, path)
}

// CheckPrivate is ReadPrivate for a file another program reads (OPA reads
// a bearer token_path at each request): it refuses the file as ReadPrivate
// would, without reading it.
func CheckPrivate(path, what, why string) error {
	f, err := open(path, private, func(mode fs.FileMode) error { return privateRefusal(what, why, path, mode) })
	if err != nil {
		return err
	}
	return f.Close()
}

// ReadUnwritable reads a file that decides who is trusted, refusing it
// when users other than its owner may write it.
func ReadUnwritable(path, what, why string) ([]byte, error) {
	return read(path, unwritable, func(mode fs.FileMode) error {
		return fmt.Errorf("%s can be written by other users of the system (mode %04o): %s; "+
			"let only its owner write it (chmod go-w %s)", what, mode.Perm(), why, path)
	})
}

func read(path string, forbidden fs.FileMode, refuse func(fs.FileMode) error) ([]byte, error) {
	f, err := open(path, forbidden, refuse)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// open opens path, refusing it when its mode has a forbidden bit.
func open(path string, forbidden fs.FileMode, refuse func(fs.FileMode) error) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if mode := fi.Mode(); mode.Perm()&forbidden != 0 {
			f.Close()
			return nil, refuse(mode)
		}
	}
	return f, nil
}
