package ledger

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// checkDataDir refuses the data directory of a SQLite ledger that
// records when users other than its owner and group may write it (o+w:
// a Kubernetes emptyDir is 0777, /tmp 1777). Whoever writes there can add
// journal segments, which the next start copies into the ledger as
// recorded decisions, chained with the rest, or put a ledger.db or a
// ledger.key of their own where the ledger's are missing or, without the
// sticky bit, in their place; the sticky bit keeps others from removing
// or renaming the ledger's files, not from adding ones. The group may
// write: a volume mounted with the pod's fsGroup (mode 2770) is the
// process's own group's, as secretfile lets the group read a key. The
// database files themselves are refused alike when others may write
// them (a backup restored with the wrong mode); SQLite gives its -wal
// and -shm files the database's mode.
//
// A directory that does not exist yet passes: it is created owner-only
// (makeDataDir). What cannot be read here (a parent without search
// permission) is left to the open that follows, which says why it
// failed. On Windows, where permission bits say nothing of who may write
// a file, nothing is checked (as secretfile does).
//
// A reader is not checked: it writes no entry and copies no journal (it
// only counts what one holds, see warnUnindexed), and reading is how a
// ledger one does not trust is checked, ledger verify with the heads of
// the reports published from it, wherever its copy was put.
func checkDataDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%w: --data-dir %s can be written by other users of the system (mode %04o): "+
			"whoever writes there can add journal segments, which the next start copies into the ledger as recorded decisions, "+
			"or replace the ledger's database and key; let only its owner and group write it (chmod o-w %s), "+
			"or give a directory inside it, which geoscope creates for its owner alone (--data-dir %s)",
			ErrConfig, dir, unixMode(fi.Mode()), dir, filepath.Join(dir, "ledger"))
	}
	for _, name := range []string{"ledger.db", "ledger.db-wal", "ledger.db-shm"} {
		path := filepath.Join(dir, name)
		// Stat: a symbolic link is judged by the file it leads to.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o002 != 0 {
			return fmt.Errorf("%w: %s in --data-dir can be written by other users of the system (mode %04o): "+
				"whoever writes it can change the recorded decisions; let only its owner and group write it (chmod o-w %s)",
				ErrConfig, path, unixMode(fi.Mode()), path)
		}
	}
	return nil
}

// makeDataDir creates the data directory owner-only where it does not
// exist, and checks it again: one another user made meanwhile, since
// Validate found none, is refused as one found then.
func makeDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: data directory: %v", ErrUnavailable, err)
	}
	return checkDataDir(dir)
}

// unixMode is mode's permission bits with the setuid, setgid and sticky
// bits, as chmod and ls write them (1777, 2770), which fs.FileMode.Perm
// leaves out.
func unixMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	for bit, u := range map[fs.FileMode]uint32{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if mode&bit != 0 {
			m |= u
		}
	}
	return m
}
