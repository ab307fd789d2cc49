package policy

import "errors"

// Coded errors, matched with errors.Is.
var (
	// ErrBundle: a bundle could not be read, verified, or activated.
	ErrBundle = errors.New("bundle rejected")
	// ErrRegistry: the registry data is malformed.
	ErrRegistry = errors.New("registry rejected")
	// ErrEvaluation: the policy failed or returned something that is not a
	// decision.
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrTimeout: evaluation exceeded its deadline or was cancelled.
	ErrTimeout = errors.New("policy evaluation timed out")
)
