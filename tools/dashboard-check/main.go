// Command dashboard-check validates Grafana dashboard JSON files the way Grafana's own schema
// does, through grafana-foundation-sdk: a strict unmarshal (an unknown or misspelt field, or a
// value of the wrong type, is an error) and then Validate() (every required field is present).
// Panel options, field config and Prometheus queries are checked against their plugin schemas.
//
// Usage: dashboard-check FILE... ; exit status 1 if any file fails, with every problem listed.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var board dashboard.Dashboard
	if err := noProblems(board.UnmarshalJSONStrict(raw)); err != nil {
		return fmt.Errorf("strict unmarshal: %w", err)
	}
	if err := noProblems(board.Validate()); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

// noProblems turns an empty cog.BuildErrors into nil: the SDK returns its (possibly empty) error
// list as an error value, which is never nil even when nothing is wrong.
func noProblems(err error) error {
	var problems cog.BuildErrors
	if errors.As(err, &problems) && len(problems) == 0 {
		return nil
	}
	return err
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE...")
		os.Exit(2)
	}
	// Without the plugin registry, panel options and queries would stay untyped and unchecked.
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			failed = true
			fmt.Fprintf(os.Stderr, "%s: invalid dashboard\n", path)
			// The SDK joins its problems with newlines: one per line, each indented.
			fmt.Fprintf(os.Stderr, "  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			continue
		}
		fmt.Printf("%s: valid (strict unmarshal and Validate)\n", path)
	}
	if failed {
		os.Exit(1)
	}
}
