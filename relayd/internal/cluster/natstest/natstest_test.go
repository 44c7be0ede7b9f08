package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A stream with three replicas takes writes on any node of the cluster and
// reads them back from another: the harness is a real JetStream cluster.
func TestThreeNodesReplicate(t *testing.T) {
	c := Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc1, err := c.Nodes[0].Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc1.Close()
	js1, _ := jetstream.New(nc1)
	if _, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js1.Publish(ctx, "t.a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	nc3, err := nats.Connect(c.Nodes[2].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc3.Close()
	js3, _ := jetstream.New(nc3)
	s, err := js3.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "t.a")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" {
		t.Fatalf("read %q from the third node, want hello", m.Data)
	}
	if info, err := s.Info(ctx); err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream info %+v, %v: want a leader and two replicas", info, err)
	}
}
