package cli

import (
	"errors"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/mcpserver"
	ucli "github.com/urfave/cli/v2"
)

// serve is relay-mcp without a command: the flags fill an mcpserver.Config,
// and mcpserver.Run serves it on stdio.
func serve(c *ucli.Context, s Streams) error {
	if c.Args().Len() > 0 {
		return exitf(ExitUsage, "unknown command %q (see relay-mcp --help)", c.Args().First())
	}
	gc, err := loadConfig(c, s)
	if err != nil {
		return err
	}
	if gc.closer != nil {
		defer gc.closer.Close()
	}
	id, err := sessionID(c)
	if err != nil {
		return err
	}
	err = mcpserver.Run(c.Context, mcpserver.Config{ID: id, Home: gc.home, URL: gc.url, URLs: gc.urls, Token: gc.token, TLS: gc.tls, Agent: gc.agent, Label: gc.label,
		Tools: c.String("tools"), Structured: c.Bool("structured-content"), Channels: c.Bool("channels"), Autostart: gc.autostart, Logger: gc.logger, SDKLogger: gc.sdkLogger}, s.Stdin, s.Stdout)
	var ce *mcpserver.ConfigError
	if errors.As(err, &ce) {
		return exitf(ExitUsage, "%s", ce)
	}
	return err
}
