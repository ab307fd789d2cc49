package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/sources"
)

// verificationFlags are the bundle signature flags of serve and decide.
type verificationFlags struct {
	key, keyID, alg string
}

// register adds the flags to f. withConfig is whether the command takes
// --config: only there can a bundle's signing.keyid name another key, and
// decide's help must not speak of a flag decide does not take.
func (v *verificationFlags) register(f *pflag.FlagSet, withConfig bool) {
	usage := "require every bundle to be signed, verifying with the key in this PEM `FILE` (public key or certificate)"
	if withConfig {
		usage += "; with --config, a bundle whose signing.keyid names another key is verified with that one"
	}
	f.StringVar(&v.key, "verification-key", "", usage)
	f.StringVar(&v.keyID, "verification-key-id", policy.DefaultKeyID, "key id of --verification-key")
	f.StringVar(&v.alg, "signing-alg", "", "signature algorithm (default: from the key: RSA → RS256, ECDSA → ES256/384/512)")
}

// loadOptions returns the bundle load options the flags ask for.
func (v *verificationFlags) loadOptions() (policy.LoadOptions, error) {
	if v.key == "" {
		switch {
		case v.alg != "":
			return policy.LoadOptions{}, usageError{fmt.Errorf("--signing-alg %s needs --verification-key", v.alg)}
		case v.keyID != policy.DefaultKeyID:
			return policy.LoadOptions{}, usageError{fmt.Errorf("--verification-key-id %s needs --verification-key", v.keyID)}
		}
		return policy.LoadOptions{}, nil
	}
	vc, err := policy.VerificationKey(v.key, v.keyID, v.alg)
	if err != nil {
		return policy.LoadOptions{}, err
	}
	return policy.LoadOptions{Verification: vc}, nil
}

// apply configures local verification and, for an OPA configuration, the
// key every configured bundle must be signed with.
func (v *verificationFlags) apply(cfg *sources.Config) error {
	opts, err := v.loadOptions()
	if err != nil {
		return err
	}
	cfg.Load.Verification = opts.Verification
	if opts.Verification != nil {
		pem, err := os.ReadFile(v.key)
		if err != nil {
			return err
		}
		key := opts.Verification.PublicKeys[opts.Verification.KeyID]
		cfg.VerificationKeyPEM, cfg.VerificationKeyID, cfg.VerificationAlg = pem, opts.Verification.KeyID, key.Algorithm
	}
	return nil
}
