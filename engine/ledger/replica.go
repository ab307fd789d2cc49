package ledger

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// MaxReplicaLen bounds a replica name: the length of a DNS name, which is
// what a Kubernetes pod name (the host name inside the pod) is.
const MaxReplicaLen = 253

// DefaultReplica is the name a replica records when none is configured:
// the host name, which is the pod name under Kubernetes and therefore
// unique among the replicas of a Deployment. Characters a replica name may
// not hold are replaced with '-'. It is "" only when the host name cannot
// be read.
func DefaultReplica() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h = strings.Map(func(r rune) rune {
		if replicaRune(r) {
			return r
		}
		return '-'
	}, h)
	return h[:min(len(h), MaxReplicaLen)]
}

// ValidReplica checks a replica name: 1 to MaxReplicaLen ASCII letters,
// digits, '.', '_' and '-'. The name is stored in every entry and shown to
// auditors, so it is kept to what a host or pod name holds.
func ValidReplica(name string) error {
	switch {
	case name == "":
		return errors.New("empty: the host name could not be read, so the replica must be named")
	case len(name) > MaxReplicaLen:
		return fmt.Errorf("%d characters; at most %d", len(name), MaxReplicaLen)
	}
	for _, r := range name {
		if !replicaRune(r) {
			return fmt.Errorf("%q holds %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, r)
		}
	}
	return nil
}

func replicaRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}
