package cli

import (
	"encoding/json"

	ucli "github.com/urfave/cli/v2"
)

func jsonFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of text"}
}

func printJSON(s Streams, v any) error {
	enc := json.NewEncoder(s.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
