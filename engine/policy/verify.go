package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// DefaultKeyID is the key id used when none is given.
const DefaultKeyID = "default"

// signingAlgorithms are the asymmetric algorithms accepted for bundle
// signatures. Shared-secret (HS*) algorithms are left out on purpose: a
// verifying replica would then hold the signing secret.
var signingAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// VerificationKey reads a PEM public key (or certificate) and returns a
// verification config that requires every bundle to be signed with it. The
// algorithm is taken from alg when given, else inferred from the key: RSA →
// RS256, ECDSA P-256/P-384/P-521 → ES256/ES384/ES512.
func VerificationKey(path, keyID, alg string) (*bundle.VerificationConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --verification-key: %v", ErrKey, err)
	}
	alg, err = publicKeyAlgorithm(raw, alg)
	var algErr algorithmError
	switch {
	case errors.As(err, &algErr):
		return nil, fmt.Errorf("%w: --signing-alg %s", ErrKey, algErr.describe("the key in "+path))
	case err != nil:
		return nil, fmt.Errorf("%w: --verification-key %s: %v", ErrKey, path, err)
	}
	if keyID == "" {
		keyID = DefaultKeyID
	}
	keys := map[string]*bundle.KeyConfig{keyID: {Key: string(raw), Algorithm: alg}}
	return bundle.NewVerificationConfig(keys, keyID, "", nil), nil
}

// CheckPublicKey checks a key as VerificationKey does (exactly one PEM
// block holding a public key or certificate, and an asymmetric algorithm
// that fits it; alg may be empty) for a key given another way, such as in
// an OPA configuration's "keys". Its errors name no flag.
func CheckPublicKey(pemBytes []byte, alg string) error {
	_, err := publicKeyAlgorithm(pemBytes, alg)
	var algErr algorithmError
	if errors.As(err, &algErr) {
		return fmt.Errorf("algorithm %s", algErr.describe("the key"))
	}
	return err
}

// algorithmError is an algorithm that is not accepted, or does not fit
// the key.
type algorithmError struct{ alg, inferred string }

func (e algorithmError) Error() string { return e.describe("the key") }

func (e algorithmError) describe(key string) string {
	if e.inferred == "" {
		return fmt.Sprintf("%q is not one of %v", e.alg, signingAlgorithms)
	}
	return fmt.Sprintf("%s does not fit %s (%s)", e.alg, key, e.inferred)
}

// publicKeyAlgorithm reads one PEM public key (or certificate) and returns
// the algorithm to verify with: alg when given and fitting the key, else
// the key's own.
func publicKeyAlgorithm(raw []byte, alg string) (string, error) {
	block, rest := pem.Decode(raw)
	if block == nil {
		return "", errors.New("not a PEM file")
	}
	// Exactly one block: a second one could be a private key riding along
	// (and OPA would be handed the whole file).
	if next, _ := pem.Decode(rest); next != nil {
		return "", fmt.Errorf("holds more than one PEM block (%s after %s); give exactly one public key", next.Type, block.Type)
	}
	var pub any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", err
		}
		pub = cert.PublicKey
	case "PUBLIC KEY":
		if pub, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return "", err
		}
	case "RSA PUBLIC KEY":
		if pub, err = x509.ParsePKCS1PublicKey(block.Bytes); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("a %q block is not a public key (a private key does not belong on a verifying server)", block.Type)
	}
	inferred, err := algorithmFor(pub)
	if err != nil {
		return "", err
	}
	if alg == "" {
		alg = inferred
	}
	if !slices.Contains(signingAlgorithms, alg) {
		return "", algorithmError{alg: alg}
	}
	// ECDSA fixes the algorithm by the curve; RSA keys serve RS* and PS*.
	if (alg[:2] == "ES") != (inferred[:2] == "ES") || (alg[:2] == "ES" && alg != inferred) {
		return "", algorithmError{alg: alg, inferred: inferred}
	}
	return alg, nil
}

func algorithmFor(pub any) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}
