package policy

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/open-policy-agent/opa/v1/topdown/print"
)

// print() is an authoring aid. Its output is whatever the policy prints,
// participant ids included, so it goes only where a policy author looks
// while debugging: the server's debug log or the stderr of one
// `geoscope decide`. It never reaches a decision, the ledger or the
// decision log, and a policy is compiled with its print() calls only when
// LoadOptions.Print is set.

// LogPrints sends print() output to log at debug level, one record per
// call: msg "policy print", the call's location and the output.
func LogPrints(log *slog.Logger) print.Hook {
	return logPrints{log: log}
}

type logPrints struct{ log *slog.Logger }

func (h logPrints) Print(pctx print.Context, msg string) error {
	h.log.DebugContext(pctx.Context, "policy print", "location", printLocation(pctx), "output", msg)
	return nil
}

// PrintTo writes print() output to w, one line per call: "FILE:ROW: OUTPUT".
// Concurrent evaluations may share it.
func PrintTo(w io.Writer) print.Hook {
	return &printTo{w: w}
}

type printTo struct {
	mu sync.Mutex
	w  io.Writer
}

func (h *printTo) Print(pctx print.Context, msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.w, "%s: %s\n", printLocation(pctx), msg)
	return err
}

func printLocation(pctx print.Context) string {
	if pctx.Location == nil {
		return "policy"
	}
	return fmt.Sprintf("%s:%d", pctx.Location.File, pctx.Location.Row)
}
