package policy

import "errors"

// Coded errors, matched with errors.Is.
var (
	// ErrBundle: a bundle could not be read, verified, or activated.
	ErrBundle = errors.New("bundle rejected")
	// ErrKey: the key given to verify bundles with cannot be used (not a
	// public key, an algorithm that does not fit it, unreadable); no
	// bundle was looked at.
	ErrKey = errors.New("unusable verification key")
	// ErrRegistry: the registry data is malformed.
	ErrRegistry = errors.New("registry rejected")
	// ErrEvaluation: the policy failed or returned something that is not a
	// decision.
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrTimeout: evaluation exceeded its deadline or was cancelled.
	ErrTimeout = errors.New("policy evaluation timed out")
)
