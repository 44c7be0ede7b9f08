package link

import (
	"os"

	"github.com/claude-relay/claude-relay/protocol"
)

// LocalHello is the hello of id from this process: its host, pid and
// working directory, with the agent kind and label shown to peers.
func LocalHello(id, agent, label string) protocol.Hello {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	return protocol.Hello{ClientID: id, Host: host, PID: os.Getpid(), Cwd: cwd, Agent: agent, Label: label}
}
