package app

import (
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster/natstest"
)

// A node of a 3-node cluster, running: doctor given its flags finds NATS,
// the stream on three replicas with a leader, the presence bucket, and the
// running node connected and caught up (from its /metrics).
func TestDoctorCluster(t *testing.T) {
	doctorEnv(t)
	c := natstest.Start(t, 3)
	addr, _, stop := serveInProcess(t, "--cluster", c.URLs(), "--cluster-node", "relay1", "--data-dir", t.TempDir())
	defer stop()
	// Right after the stream is made a replica may be an entry behind, which
	// doctor rightly warns of: ask until the cluster has settled.
	var code int
	var out string
	testkit.WaitFor(t, 30*time.Second, "doctor to find the new cluster settled", func() bool {
		code, out = doctorLines(t, "--listen", addr, "--cluster", c.URLs())
		return code == 0 && hasLine(out, "OK", "stream", "replica")
	})
	for _, l := range []struct{ status, name, re string }{
		{"OK", "cluster", `NATS n\d \(v\S+\) at nats://127\.0\.0\.1:\d+, in NATS cluster "\S+", with JetStream`},
		{"OK", "stream", `stream RELAY: \d+ messages, \d+ bytes, 3 replica\(s\), leader n\d`},
		{"OK", "presence", `bucket relay_presence: 0 ids online`},
		{"OK", "lag", `relayd node relay1 is connected and 0 stream entries behind`},
	} {
		if !hasLine(out, l.status, l.name, l.re) {
			t.Errorf("no %s %s line matching %q", l.status, l.name, l.re)
		}
	}
	if strings.Contains(out, "data dir") {
		t.Error("a cluster node's store is the cluster: no data dir check")
	}
}

// NATS that does not answer fails the cluster check with its fix, and a
// running relayd that is not in a cluster fails the lag check.
func TestDoctorClusterProblems(t *testing.T) {
	doctorEnv(t)
	dead := "nats://" + testkit.RefusedAddr(t)
	code, out := doctorLines(t, "--cluster", dead)
	if code != 1 || !hasLine(out, "FAIL", "cluster", "NATS not reachable at "+dead) || !strings.Contains(out, "fix: start the NATS server of this machine") {
		t.Fatalf("exit %d: want the cluster check to fail", code)
	}

	c := natstest.Start(t, 1)
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	code, out = doctorLines(t, "--listen", addr, "--cluster", c.URLs())
	if code != 1 || !hasLine(out, "FAIL", "lag", "is not in a cluster") {
		t.Fatalf("exit %d: want the lag check to fail for a relayd without --cluster", code)
	}
	if !hasLine(out, "OK", "cluster", "in a single NATS server") || !hasLine(out, "WARN", "stream", "does not exist yet") {
		t.Error("a NATS server no relayd used yet: OK, with the stream to come")
	}
}
