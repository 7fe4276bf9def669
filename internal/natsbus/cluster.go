package natsbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of nats-servers in this process, joined by routes on loopback ports. Tests and
// benchmarks use it to run ssfd replicas against a real replicated JetStream (RAFT groups, stream leaders,
// failover) without anything installed; production runs a NATS cluster of its own (deploy/).
type Cluster struct {
	mu      sync.Mutex
	dir     string
	clients []int // client port of each node
	routes  []int // cluster (route) port of each node
	servers []*server.Server
}

// StartCluster starts n (at least 3 for R3 streams) JetStream nodes storing under dir/n<i>, and waits until
// JetStream has a meta leader. Ports are picked free on 127.0.0.1 and kept across RestartNode.
func StartCluster(n int, dir string) (*Cluster, error) {
	if n < 1 {
		return nil, errors.New("natsbus: a cluster needs at least one node")
	}
	c := &Cluster{dir: dir, servers: make([]*server.Server, n)}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c.clients, c.routes = ports[:n], ports[n:]
	for i := range n {
		if err := c.start(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.waitForMetaLeader(30 * time.Second); err != nil {
		c.Shutdown()
		return nil, err
	}
	if err := c.waitForPlacement(n, 30*time.Second); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// waitForPlacement waits until the cluster can place a stream on every node: a meta leader is elected before
// it knows all its peers, and an R3 stream created in between is refused ("no suitable peers for placement").
func (c *Cluster) waitForPlacement(n int, timeout time.Duration) error {
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		return fmt.Errorf("natsbus: connect to the new cluster: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.CreateStream(actx, jetstream.StreamConfig{Name: "SSFD_PLACEMENT_PROBE", Subjects: []string{"ssfd.placement.probe"},
			Replicas: n, Storage: jetstream.MemoryStorage})
		acancel()
		if err == nil {
			return js.DeleteStream(ctx, "SSFD_PLACEMENT_PROBE")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsbus: the cluster cannot place an R%d stream: %w", n, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts reserves n distinct loopback ports by listening on them, then releases them for the servers.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natsbus: reserve a port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) start(i int) error {
	var routes []*url.URL
	for j, p := range c.routes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(p)})
		}
	}
	opts := &server.Options{
		ServerName: "n" + strconv.Itoa(i+1),
		Host:       "127.0.0.1",
		Port:       c.clients[i],
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, "n"+strconv.Itoa(i+1)),
		NoSigs:     true,
		NoLog:      true,
		Cluster:    server.ClusterOpts{Name: "ssfd", Host: "127.0.0.1", Port: c.routes[i]},
		Routes:     routes,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natsbus: configure node %d: %w", i+1, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("natsbus: node %d did not become ready within 10s", i+1)
	}
	c.mu.Lock()
	c.servers[i] = srv
	c.mu.Unlock()
	return nil
}

func (c *Cluster) waitForMetaLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.servers {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				c.mu.Unlock()
				return nil
			}
		}
		c.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("natsbus: the cluster elected no JetStream meta leader in time")
}

// URLs returns the client URLs of every node, comma-separated, the form --nats-url takes.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.clients))
	for i, p := range c.clients {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i (0-based).
func (c *Cluster) URL(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(c.clients[i]) }

// StopNode shuts node i down, as a lost machine would be: its clients reconnect to the others, and its stream
// replicas fall behind until it returns.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	srv := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// RestartNode starts node i again on its ports and store, where it catches up with the cluster.
func (c *Cluster) RestartNode(i int) error {
	c.StopNode(i)
	if err := c.start(i); err != nil {
		return err
	}
	return c.waitForMetaLeader(30 * time.Second)
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.servers {
		c.StopNode(i)
	}
}
