package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/geoscope/geoscope/engine/input"
)

func geoipCommand() *cobra.Command {
	cmd := commandGroup("geoip", "Inspect the GeoIP database")
	var geoPath string
	lookup := &cobra.Command{
		Use:   "lookup [--geoip-db FILE] IP...",
		Short: "Print the located country of each address, one JSON object per line",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			addrs := make([]netip.Addr, len(args))
			for i, a := range args {
				addr, err := netip.ParseAddr(a)
				if err != nil || addr.Zone() != "" {
					return &input.FieldError{Field: fmt.Sprintf("args[%d]", i), Message: fmt.Sprintf("%q is not an IP address", a)}
				}
				addrs[i] = addr
			}
			db, err := openGeo(geoPath)
			if err != nil {
				return err
			}
			info := db.Info()
			enc := json.NewEncoder(cmd.OutOrStdout())
			for i, addr := range addrs {
				d := db.Explain(addr)
				out := lookupResult{
					IP:           args[i],
					Country:      d.Country,
					Subdivisions: d.Subdivisions,
					Known:        d.Known,
					Reason:       d.Reason,
					Registered:   d.Registered,
					Database:     info.Database,
					Build:        info.Build.Format("2006-01-02T15:04:05Z"),
				}
				if d.Network.IsValid() {
					out.Network = d.Network.String()
				}
				if err := enc.Encode(out); err != nil {
					return err
				}
			}
			return nil
		},
	}
	lookup.Flags().StringVar(&geoPath, "geoip-db", "", "GeoIP2/GeoLite2 Country or City database `FILE` (default: embedded)")
	cmd.AddCommand(lookup)
	return cmd
}

type lookupResult struct {
	IP      string `json:"ip"`
	Country string `json:"country,omitempty"`
	// Subdivisions are the ISO 3166-2 subdivisions the address is located
	// in (City databases only).
	Subdivisions []string `json:"subdivisions,omitempty"`
	Known        bool     `json:"known"`
	Reason       string   `json:"reason,omitempty"`
	Network      string   `json:"network,omitempty"`
	// Registered is shown for context only; decisions never use it.
	Registered string `json:"registered_country,omitempty"`
	Database   string `json:"database"`
	Build      string `json:"build"`
}
