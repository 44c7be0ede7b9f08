// What relayd and relay-mcp share beyond the wire contract (protocol/):
// buildinfo, the build information both binaries print; agentsetup, what
// both doctors say about the agents' configuration; atomicfile, how both
// replace a file whole; doccheck, the checker their docs tests run over
// README.md and docs/*.md; testkit, their tests' helpers. The "internal" path element lets only this repository's modules
// import it; they require it at a tagged version, like protocol.
module github.com/claude-relay/claude-relay/internal

go 1.25.0

require github.com/urfave/cli/v2 v2.27.7

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
)
