// Command geoscope is a policy decision point that scopes government
// demands against meetings to the participants located inside the
// demanding authority's jurisdiction. See the README.
package main

import (
	"os"

	"github.com/geoscope/geoscope/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
