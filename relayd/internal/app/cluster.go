package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
)

func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cluster", EnvVars: []string{"RELAY_CLUSTER"},
			Usage: "join a cluster of relayd nodes: comma-separated `URLS` of NATS servers with JetStream (nats://host:4222,…), or \"embedded\" to run one inside relayd (see --nats-*); default: no cluster, the --store on this node"},
		&cli.StringFlag{Name: "cluster-creds", EnvVars: []string{"RELAY_CLUSTER_CREDS"},
			Usage: "NATS credentials `FILE` (JWT and nkey) for --cluster"},
		&cli.StringFlag{Name: "cluster-ca", EnvVars: []string{"RELAY_CLUSTER_CA"},
			Usage: "PEM root CA `FILE` that signed the NATS servers' TLS certificates (tls:// URLs)"},
		&cli.StringFlag{Name: "cluster-cert", EnvVars: []string{"RELAY_CLUSTER_CERT"},
			Usage: "PEM client certificate `FILE` for NATS servers that verify clients (needs --cluster-key)"},
		&cli.StringFlag{Name: "cluster-key", EnvVars: []string{"RELAY_CLUSTER_KEY"},
			Usage: "PEM private key `FILE` of --cluster-cert"},
		&cli.IntFlag{Name: "cluster-replicas", EnvVars: []string{"RELAY_CLUSTER_REPLICAS"},
			Usage: "`N` NATS nodes hold each write (0: 3 on a NATS cluster, 1 on a single server); 3 survives the loss of a node and of power"},
		&cli.StringFlag{Name: "cluster-node", EnvVars: []string{"RELAY_CLUSTER_NODE"},
			Usage: "`NAME` of this relayd node in the cluster (default: host name and listen address)"},
		&cli.StringFlag{Name: "nats-name", EnvVars: []string{"RELAY_NATS_NAME"},
			Usage: "with --cluster embedded: `NAME` of the NATS server, different on each node (default: the host name)"},
		&cli.StringFlag{Name: "nats-listen", EnvVars: []string{"RELAY_NATS_LISTEN"},
			Usage: "with --cluster embedded: `ADDR` where the NATS server takes clients (the nats CLI); default none, relayd talks to it in process"},
		&cli.StringFlag{Name: "nats-cluster-listen", EnvVars: []string{"RELAY_NATS_CLUSTER_LISTEN"},
			Usage: "with --cluster embedded: `ADDR` for routes from the other NATS nodes; default none (a single NATS node)"},
		&cli.StringSliceFlag{Name: "nats-routes", EnvVars: []string{"RELAY_NATS_ROUTES"},
			Usage: "with --cluster embedded: nats-route://host:port `URL`s of the other NATS nodes"},
		&cli.BoolFlag{Name: "nats-sync-always", EnvVars: []string{"RELAY_NATS_SYNC_ALWAYS"},
			Usage: "with --cluster embedded: fsync every write (default: every 2 minutes; the OS holds the rest, which survives kill -9 but not power loss on one replica)"},
	}
}

func clusterConfigFrom(c *cli.Context) (daemon.ClusterConfig, error) {
	cc := daemon.ClusterConfig{
		URLs: strings.TrimSpace(c.String("cluster")), Creds: c.String("cluster-creds"), CA: c.String("cluster-ca"),
		Cert: c.String("cluster-cert"), Key: c.String("cluster-key"), Replicas: c.Int("cluster-replicas"), Node: c.String("cluster-node"),
		NATSName: c.String("nats-name"), NATSListen: c.String("nats-listen"), NATSClusterListen: c.String("nats-cluster-listen"),
		NATSRoutes: c.StringSlice("nats-routes"), NATSSyncAlways: c.Bool("nats-sync-always"),
	}
	if cc.URLs == "" {
		return cc, nil
	}
	if cc.URLs != "embedded" {
		for _, u := range strings.Split(cc.URLs, ",") {
			u = strings.TrimSpace(u)
			if !strings.Contains(u, "://") {
				return cc, fmt.Errorf("--cluster %q: give NATS URLs such as nats://127.0.0.1:4222 (comma-separated), or embedded", u)
			}
		}
	}
	if (cc.Cert == "") != (cc.Key == "") {
		return cc, errors.New("--cluster-cert and --cluster-key go together")
	}
	if cc.Replicas < 0 || cc.Replicas > 5 {
		return cc, errors.New("--cluster-replicas takes 1 to 5 (0: automatic)")
	}
	return cc, nil
}
