# Homebrew formula for relayd, the claude-relay daemon, built from source
# with Go. From a checkout of the repository:
#   brew install --HEAD --formula ./deploy/homebrew/relayd.rb   (until v0.1.0 is tagged)
#   brew services start relayd      # or: relayd service install
# From a tap that carries this file: brew install claude-relay/tap/relayd
class Relayd < Formula
  desc "Relay daemon for real-time messages between AI coding-agent sessions"
  homepage "https://github.com/claude-relay/claude-relay"
  # v0.1.0 is not tagged yet: until it is, only --HEAD (the main branch)
  # installs; see docs/install.md.
  url "https://github.com/claude-relay/claude-relay.git", tag: "v0.1.0"
  head "https://github.com/claude-relay/claude-relay.git", branch: "main"

  depends_on "go" => :build

  def install
    # The repository's go.work joins relayd with the protocol module of the
    # same commit, so the build needs nothing but the Go module proxy.
    # The variables `make install` stamps (package buildinfo); tested with
    # these exact flags by relayd/internal/service TestHomebrewFormulaeStampTheVersion.
    ldflags = "-s -w -X github.com/claude-relay/claude-relay/internal/buildinfo.Version=#{version}"
    cd "relayd" do
      system "go", "build", *std_go_args(ldflags: ldflags), "."
    end
  end

  service do
    run [opt_bin/"relayd"]
    keep_alive true
    log_path var/"log/claude-relay/relayd.log"
    error_log_path var/"log/claude-relay/relayd.log"
  end

  def caveats
    <<~EOS
      relayd listens on 127.0.0.1:9999 and keeps its store in ~/claude-relay/data.
      Start it now and at login:  brew services start relayd
      Is it up?                   curl -s 127.0.0.1:9999/healthz
    EOS
  end

  test do
    assert_match "protocol v1", shell_output("#{bin}/relayd version")
    port = free_port
    pid = spawn bin/"relayd", "--listen", "127.0.0.1:#{port}", "--store", "memory"
    begin
      health = ""
      20.times do
        sleep 0.5
        health = shell_output("curl -s http://127.0.0.1:#{port}/healthz || true")
        break if health.include?("\"status\":\"ok\"")
      end
      assert_match "\"status\":\"ok\"", health
    ensure
      Process.kill "TERM", pid
      Process.wait pid
    end
  end
end
