package cli

import (
	"os"

	ucli "github.com/urfave/cli/v2"
)

// acceptGlobalsEverywhere lets every command take the global options after
// its name as well as before it (relay-mcp receive --relay-url … as well as
// relay-mcp --relay-url … receive), and turns a usage error of any command
// into exit 2 with one line, instead of a help dump and exit 1.
//
// urfave/cli v2 parses each command's options on their own, so each command
// gets hidden copies of the global flags; its Before copies a value given
// before the command name down to the copy, unless the copy was given too
// (the later, more specific one wins).
func acceptGlobalsEverywhere(app *ucli.App) {
	app.OnUsageError = usageError
	var walk func(cmds []*ucli.Command)
	walk = func(cmds []*ucli.Command) {
		for _, cmd := range cmds {
			cmd.OnUsageError = usageError
			for _, f := range globalFlags() {
				if sf, ok := f.(*ucli.StringFlag); ok && !hasFlag(cmd, sf.Name) {
					sf.Hidden = true
					cmd.Flags = append(cmd.Flags, sf)
				}
			}
			before := cmd.Before
			cmd.Before = func(c *ucli.Context) error {
				inheritGlobals(c)
				if before != nil {
					return before(c)
				}
				return nil
			}
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
}

func hasFlag(cmd *ucli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// inheritGlobals copies each global option given on the command line before
// this command's name into the command's own copy of it. A value that
// differs from the environment's (or the default) was given on the command
// line.
func inheritGlobals(c *ucli.Context) {
	lineage := c.Lineage()
	for _, f := range globalFlags() {
		sf, ok := f.(*ucli.StringFlag)
		if !ok {
			continue
		}
		base := sf.Value
		for _, e := range sf.EnvVars {
			if v, ok := os.LookupEnv(e); ok {
				base = v
				break
			}
		}
		if c.String(sf.Name) != base {
			continue // given after the command name
		}
		for _, anc := range lineage[1:] {
			if anc == nil {
				continue
			}
			if v := anc.String(sf.Name); v != base && v != "" { // "": a context without the flag
				_ = c.Set(sf.Name, v)
				break
			}
		}
	}
}

// usageError is every command's OnUsageError: one line and exit 2.
func usageError(c *ucli.Context, err error, _ bool) error {
	name := "relay-mcp"
	if c.Command != nil && c.Command.FullName() != "" {
		name += " " + c.Command.FullName()
	}
	return exitf(ExitUsage, "%v (see %s --help)", err, name)
}
