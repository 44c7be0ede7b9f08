# Homebrew formula for relay-mcp, the MCP server each AI coding agent spawns
# to reach a claude-relay relayd, built from source with Go. From a checkout:
#   brew install --HEAD --formula ./deploy/homebrew/relay-mcp.rb   (until v0.1.0 is tagged)
#   claude mcp add -s user relay -- relay-mcp
# From a tap that carries this file: brew install claude-relay/tap/relay-mcp
class RelayMcp < Formula
  desc "MCP server that lets AI coding-agent sessions message each other"
  homepage "https://github.com/claude-relay/claude-relay"
  # v0.1.0 is not tagged yet: until it is, only --HEAD (the main branch)
  # installs; see docs/install.md.
  url "https://github.com/claude-relay/claude-relay.git", tag: "v0.1.0"
  head "https://github.com/claude-relay/claude-relay.git", branch: "main"

  depends_on "go" => :build

  def install
    # The variables `make install` stamps (package buildinfo); tested with
    # these exact flags by relayd/internal/service TestHomebrewFormulaeStampTheVersion.
    ldflags = "-s -w -X github.com/claude-relay/claude-relay/internal/buildinfo.Version=#{version}"
    cd "relay-mcp" do
      system "go", "build", *std_go_args(ldflags: ldflags), "."
    end
  end

  def caveats
    <<~EOS
      relay-mcp needs a running relayd (brew install relayd, or an SSH tunnel to one).
      Add it to Claude Code:  claude mcp add -s user relay -- relay-mcp
    EOS
  end

  test do
    assert_match "protocol v1", shell_output("#{bin}/relay-mcp version")
    # With no relay to reach it still answers the MCP handshake on stdio.
    init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":' \
           '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"brew","version":"1"}}}'
    out = pipe_output("#{bin}/relay-mcp --autostart off --relay-url ws://127.0.0.1:#{free_port} 2>/dev/null", "#{init}\n", nil)
    assert_match "\"serverInfo\":{\"name\":\"claude-relay\"", out
  end
end
