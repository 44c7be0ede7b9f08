// Package cluster lets several relayd nodes behave as one relay on NATS
// JetStream (docs/cluster.md). SQLite stays the single-node default; a
// relayd started with --cluster uses this package instead.
//
// What it offers other packages:
//
//   - StartEmbedded / Embedded: a NATS server with JetStream inside relayd
//     (the one-binary setup, and the tests through package natstest).
package cluster
