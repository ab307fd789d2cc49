// Command geoscope is a policy decision point that scopes government
// demands against meetings to the participants located inside the
// demanding authority's jurisdiction. See the README.
package main

import (
	"os"

	// Root certificates compiled in, used only where the system has none:
	// the container image is FROM scratch, and must still verify a bundle
	// service or PostgreSQL server over TLS.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/geoscope/geoscope/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
