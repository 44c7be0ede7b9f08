package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster/natstest"
)

// Inspect on a 3-node cluster before any relayd ran: NATS and JetStream
// answer, the stream and the bucket are not there yet; once they are, the
// stream's replicas and leader and the presence ids are reported.
func TestInspect(t *testing.T) {
	c := natstest.Start(t, 3)
	nc, err := nats.Connect(c.Nodes[1].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cluster.Inspect(ctx, nc)
	if err != nil || r.Server != "n2" || r.Stream != nil || r.Presence {
		t.Fatalf("before any relayd: %+v, %v", r, err)
	}

	js, _ := jetstream.New(nc)
	// A leader elected a moment ago may not know every peer yet ("no
	// suitable peers for placement"): retry until the deadline.
	testkit.WaitFor(t, 30*time.Second, "a three-replica stream", func() bool {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: cluster.StreamName, Subjects: []string{"relay.>"}, Replicas: 3})
		return err == nil
	})
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cluster.PresenceBucket, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The bucket's and the stream's leaders may be a moment from elected:
	// the put and the publish are retried until they are stored (a put is
	// one key however often; the publish's id makes a retry of one that
	// was stored after all a duplicate, which the stream drops).
	testkit.WaitFor(t, 30*time.Second, "a presence claim stored", func() bool {
		_, err := kv.Put(ctx, "CC-1", []byte("n1"))
		return err == nil
	})
	testkit.WaitFor(t, 30*time.Second, "a message in the stream", func() bool {
		_, err := js.Publish(ctx, "relay.mail.CC-1", []byte("x"), jetstream.WithMsgID("inspect-test-1"))
		return err == nil
	})
	// What a replica has not applied yet it does not list: asked again
	// until the claim shows (WaitFor fails the test if it never does).
	testkit.WaitFor(t, 30*time.Second, "Inspect to see the stream and the claim", func() bool {
		r, err = cluster.Inspect(ctx, nc)
		return err == nil && r.Stream != nil && r.Presence && r.PresenceIDs == 1
	})
	s := r.Stream
	if s.Replicas != 3 || s.Leader == "" || len(s.Peers) != 3 || !s.Peers[0].Leader || s.Messages != 1 || s.LastSeq != 1 {
		t.Fatalf("stream: %+v", s)
	}
}
