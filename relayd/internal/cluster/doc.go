// Package cluster lets several relayd nodes behave as one relay on NATS
// JetStream (docs/cluster.md). SQLite stays the single-node default; a
// relayd started with --cluster uses this package instead.
//
// The design, in short:
//
//   - One stream, RELAY (subjects relay.>, Limits retention, MaxAge = the
//     relay's retention, 2-minute duplicate window), holds every message
//     under relay.mail.<recipient> and every mailbox event (acks, reads,
//     clears, sessions) under relay.ev.<kind>.<client>, in one order. A
//     message's seq in a mailbox is its stream seq: strictly increasing
//     per recipient, with gaps. Each copy carries Nats-Msg-Id made from
//     the send's sender, ref and content, so a send retried through
//     another node after a crash is stored once.
//   - Every node follows the stream with an ordered consumer into an index
//     in memory (index.go), rebuilt from the stream at start; reads
//     (mailboxes, history, receipts, sessions) are answered from it, and
//     a message reaches its recipient's connection when the index of the
//     node holding that connection applies it. A message is visible only
//     once the stream acknowledged it on its replicas: nothing is
//     provisional.
//   - Presence is the KV bucket relay_presence: one key per online id,
//     naming the node that holds its connection, renewed by that node and
//     dropped by the bucket's TTL when the node dies. A node takes an id
//     over by compare-and-set on its key; the node that held it sees the
//     change and closes its connection with 4409.
//   - The operator's holds of a pair (the console) are node-local and in
//     memory (store.HoldBook): a node refuses the sends it takes between a
//     pair held on it, a send through another node is not held, and a
//     restart of the node releases them. The single-node SQLite store keeps
//     them on disk.
//
// What it offers other packages:
//
//   - StartEmbedded / Embedded: a NATS server with JetStream inside relayd
//     (the one-binary setup, and the tests through package natstest).
//   - Open / Store: the store.Store of a node, plus the hub's view of the
//     other nodes (Claim, Release, RemotePeers, RemoteOnline; Attach gives
//     it the hub to call back).
//   - (*Store).Health: connected or not, the stream's last seq, this
//     node's lag behind it, current replicas, ids online: for relayd
//     doctor and /metrics.
//   - Inspect: the stream and the presence bucket as any NATS client sees
//     them (inspect.go), for relayd doctor, which runs apart from the node.
package cluster
