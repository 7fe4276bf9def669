package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

// The deploy files run ssfd as a cluster (docs/cluster.md): at least two replicas on the JetStream storage backend
// against a three-node NATS JetStream cluster with replicated (R3) streams and buckets.

func TestComposeRunsSSFDReplicasOnAThreeNodeNATSCluster(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	data, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	var nats, replicas []string
	for name, svc := range compose.Services {
		switch {
		case strings.HasPrefix(svc.Image, "nats:") && slices.Contains(svc.Command, "-js"):
			nats = append(nats, name)
		case len(svc.Command) > 0 && svc.Command[0] == "serve":
			replicas = append(replicas, name)
		}
	}
	slices.Sort(nats)
	slices.Sort(replicas)
	if len(nats) != 3 || len(replicas) < 2 {
		t.Fatalf("compose runs NATS nodes %v and ssfd replicas %v; want 3 and at least 2", nats, replicas)
	}
	for _, name := range nats {
		routes := flagValue(compose.Services[name].Command, "--routes")
		for _, peer := range nats {
			if !strings.Contains(routes, "nats://"+peer+":6222") {
				t.Errorf("%s: --routes %q lacks %s", name, routes, peer)
			}
		}
	}
	ids, volumes, issuers := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, name := range replicas {
		svc := compose.Services[name]
		env := svc.Environment
		if env["SSFD_STORE"] != "jetstream" || env["SSFD_NATS_REPLICAS"] != "3" {
			t.Errorf("%s: SSFD_STORE %q, SSFD_NATS_REPLICAS %q; want jetstream and 3", name, env["SSFD_STORE"], env["SSFD_NATS_REPLICAS"])
		}
		for _, node := range nats {
			if !strings.Contains(env["SSFD_NATS_URL"], "nats://"+node+":4222") {
				t.Errorf("%s: SSFD_NATS_URL %q lacks %s", name, env["SSFD_NATS_URL"], node)
			}
		}
		ids[env["SSFD_REPLICA_ID"]] = env["SSFD_REPLICA_ID"] != ""
		volumes[strings.Join(svc.Volumes, " ")] = true
		issuers[flagValue(svc.Command, "--issuer")] = true
		serveAccepts(t, name, svc.Command[1:], env)
	}
	if len(ids) != len(replicas) || ids[""] {
		t.Errorf("the replicas need distinct SSFD_REPLICA_IDs, got %v", ids)
	}
	if len(volumes) != len(replicas) {
		t.Error("two replicas share a data volume; each needs its own")
	}
	if len(issuers) != 1 || issuers[""] {
		t.Errorf("the replicas have issuers %v; all must set the same one, the load balancer's", issuers)
	}
	var lb strings.Builder
	for _, c := range compose.Configs {
		lb.WriteString(c.Content)
	}
	for _, name := range replicas {
		if !strings.Contains(lb.String(), name+":8080") {
			t.Errorf("the load balancer's configuration does not send to %s", name)
		}
	}
	if !strings.Contains(lb.String(), "/readyz") {
		t.Error("the load balancer does not check /readyz")
	}
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// serveAccepts checks that `ssfd serve args` with env as its environment passes the configuration checks of serve.
func serveAccepts(t *testing.T, name string, args []string, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newServeCommand()
	if err := cmd.ParseFlags(args); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if err := cmd.PreRunE(cmd, nil); err != nil {
		t.Errorf("%s: ssfd serve refuses its configuration: %v", name, err)
	}
}

// manifest is one Kubernetes object, decoded loosely.
type manifest map[string]any

func (m manifest) get(path ...any) any {
	var v any = map[string]any(m)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			o, _ := v.(map[string]any)
			v = o[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func (m manifest) str(path ...any) string { return fmt.Sprint(m.get(path...)) }

func readManifests(t *testing.T, path string) map[string]manifest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byKindName := map[string]manifest{}
	dec := yaml.NewDecoder(f)
	for {
		var doc map[string]any // not manifest: yaml would decode nested mappings into that type too
		if err := dec.Decode(&doc); err != nil {
			break // TestDeployManifestsAreValidYAML reports syntax errors
		}
		m := manifest(doc)
		byKindName[m.str("kind")+"/"+m.str("metadata", "name")] = m
	}
	return byKindName
}

// containerEnv maps the env of a pod template's first container to its value, or to "from:<source>".
func containerEnv(m manifest) map[string]string {
	env := map[string]string{}
	list, _ := m.get("spec", "template", "spec", "containers", 0, "env").([]any)
	for _, e := range list {
		e := manifest(e.(map[string]any))
		if e.get("value") != nil {
			env[e.str("name")] = e.str("value")
		} else {
			env[e.str("name")] = fmt.Sprint("from:", e.get("valueFrom"))
		}
	}
	return env
}

func TestKubernetesRunsSSFDReplicasOnAThreeNodeNATSStatefulSet(t *testing.T) {
	objs := readManifests(t, "../../deploy/kubernetes/ssfd.yaml")
	ssfd, sts := objs["Deployment/ssfd"], objs["StatefulSet/nats"]
	if ssfd == nil || sts == nil {
		t.Fatal("deploy/kubernetes/ssfd.yaml needs Deployment ssfd and StatefulSet nats")
	}
	if n, _ := ssfd.get("spec", "replicas").(int); n < 2 {
		t.Errorf("Deployment ssfd has %v replicas; want at least 2", ssfd.get("spec", "replicas"))
	}
	env := containerEnv(ssfd)
	if env["SSFD_STORE"] != "jetstream" || env["SSFD_NATS_REPLICAS"] != "3" {
		t.Errorf("ssfd: SSFD_STORE %q, SSFD_NATS_REPLICAS %q; want jetstream and 3", env["SSFD_STORE"], env["SSFD_NATS_REPLICAS"])
	}
	if !strings.Contains(env["SSFD_REPLICA_ID"], "metadata.name") {
		t.Errorf("ssfd: SSFD_REPLICA_ID %q is not the pod name", env["SSFD_REPLICA_ID"])
	}
	if p := ssfd.str("spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("ssfd: readiness probe on %q, want /readyz", p)
	}
	vols, _ := ssfd.get("spec", "template", "spec", "volumes").([]any)
	for _, v := range vols {
		if v.(map[string]any)["persistentVolumeClaim"] != nil {
			t.Error("ssfd replicas share a PersistentVolumeClaim; with the JetStream store they keep nothing on disk")
		}
	}

	if n, _ := sts.get("spec", "replicas").(int); n != 3 {
		t.Errorf("StatefulSet nats has %v replicas; want 3", sts.get("spec", "replicas"))
	}
	svc := sts.str("spec", "serviceName")
	if headless := objs["Service/"+svc]; headless == nil || headless.str("spec", "clusterIP") != "None" {
		t.Errorf("StatefulSet nats: serviceName %q is not a headless Service", svc)
	}
	if sts.get("spec", "volumeClaimTemplates", 0) == nil {
		t.Error("StatefulSet nats has no volumeClaimTemplates: each node needs its own volume")
	}
	var nodes []string
	for i := range 3 {
		nodes = append(nodes, fmt.Sprintf("nats-%d.%s", i, svc))
		if !strings.Contains(env["SSFD_NATS_URL"], nodes[i]+":4222") {
			t.Errorf("ssfd: SSFD_NATS_URL %q lacks %s:4222", env["SSFD_NATS_URL"], nodes[i])
		}
	}
	if p := ssfd.str("spec", "template", "spec", "containers", 0, "startupProbe", "httpGet", "path"); p == "<nil>" {
		t.Error("ssfd: no startup probe; the liveness probe could restart a replica while it replays the state log")
	}
	var cfg struct {
		Issuer string `yaml:"issuer"`
	}
	if err := yaml.Unmarshal([]byte(objs["ConfigMap/ssfd"].str("data", "ssfd.yaml")), &cfg); err != nil {
		t.Fatalf("ConfigMap ssfd: %v", err)
	}
	if cfg.Issuer == "" && env["SSFD_ISSUER"] == "" {
		t.Error("ssfd: no issuer; every replica must sign with the same, explicit issuer")
	}
	checkNATSConfig(t, objs, sts, nodes)
	checkNATSNetworkPolicy(t, objs, ssfd, sts)
	serveAcceptsPod(t, objs["ConfigMap/ssfd"], env)

	for name, want := range map[string]int{"ssfd": 1, "nats": 2} {
		pdb := objs["PodDisruptionBudget/"+name]
		if pdb == nil {
			t.Errorf("no PodDisruptionBudget %s", name)
			continue
		}
		if n, _ := pdb.get("spec", "minAvailable").(int); n < want {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v; want at least %d", name, pdb.get("spec", "minAvailable"), want)
		}
	}
}

// serveAcceptsPod checks that ssfd serve accepts the ConfigMap's ssfd.yaml with the pod's environment, where
// values from the downward API or Secrets are placeholders and $(NAME) references are expanded as the kubelet does.
func serveAcceptsPod(t *testing.T, cm manifest, env map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ssfd.yaml")
	if err := os.WriteFile(path, []byte(cm.str("data", "ssfd.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	serveAccepts(t, "Deployment ssfd", []string{"--config", path}, resolvePodEnv(env))
}

// resolvePodEnv turns the env of containerEnv into the values the process sees: a value from the downward API or
// a Secret becomes a placeholder of letters and digits, different for every variable, and $(NAME) references are
// expanded as the kubelet does.
func resolvePodEnv(env map[string]string) map[string]string {
	resolved := map[string]string{}
	for name, v := range env {
		if strings.HasPrefix(v, "from:") {
			resolved[name] = "placeholder" + strings.ReplaceAll(name, "_", "")
		}
	}
	for name, v := range env {
		if !strings.HasPrefix(v, "from:") {
			for ref, val := range resolved {
				if !strings.HasPrefix(env[ref], "from:") {
					continue
				}
				v = strings.ReplaceAll(v, "$("+ref+")", val)
			}
			resolved[name] = v
		}
	}
	return resolved
}

// checkNATSConfig loads the StatefulSet's nats.conf with nats-server's own parser, its environment resolved by
// resolvePodEnv, and checks that it enables JetStream, routes to every node with the route credentials, requires
// authentication on both ports, and keeps the monitoring port off every Service.
func checkNATSConfig(t *testing.T, objs map[string]manifest, sts manifest, nodes []string) {
	t.Helper()
	cm := objs["ConfigMap/nats"]
	if cm == nil {
		t.Fatal("no ConfigMap nats")
	}
	for name, v := range resolvePodEnv(containerEnv(sts)) {
		t.Setenv(name, v)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(cm.str("data", "nats.conf")), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !opts.JetStream || opts.StoreDir == "" || opts.Cluster.Name == "" {
		t.Errorf("nats.conf: jetstream %v, store_dir %q, cluster %q", opts.JetStream, opts.StoreDir, opts.Cluster.Name)
	}
	if opts.Cluster.Username == "" || opts.Cluster.Password == "" {
		t.Error("nats.conf: cluster has no authorization: anyone reaching port 6222 can join the cluster as a route")
	}
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Hostname())
		pass, _ := r.User.Password()
		if r.User.Username() != opts.Cluster.Username || pass != opts.Cluster.Password {
			t.Errorf("nats.conf: route to %s does not carry the cluster's route user and password", r.Hostname())
		}
	}
	for _, n := range nodes {
		if !slices.Contains(routes, n) {
			t.Errorf("nats.conf: routes %v lack %s", routes, n)
		}
	}
	if len(opts.Users) == 0 && opts.Username == "" && len(opts.Nkeys) == 0 {
		t.Error("nats.conf: NATS accepts clients without authentication; SSFD_keys holds private keys")
	}
	if opts.HTTPPort == 0 || opts.HTTPHost == "127.0.0.1" || opts.HTTPHost == "localhost" {
		return
	}
	for key, svc := range objs {
		if !strings.HasPrefix(key, "Service/") {
			continue
		}
		ports, _ := svc.get("spec", "ports").([]any)
		for _, p := range ports {
			p := manifest(p.(map[string]any))
			if p.str("port") == fmt.Sprint(opts.HTTPPort) || containerPort(sts, p.get("targetPort")) == opts.HTTPPort {
				t.Errorf("%s exposes the NATS monitoring port %d; only the probes need it", key, opts.HTTPPort)
			}
		}
	}
}

// containerPort resolves a port given by number or by name to a container port number of the pod template of m.
func containerPort(m manifest, port any) int {
	switch p := port.(type) {
	case int:
		return p
	case string:
		list, _ := m.get("spec", "template", "spec", "containers", 0, "ports").([]any)
		for _, cp := range list {
			cp := manifest(cp.(map[string]any))
			if cp.str("name") == p {
				n, _ := cp.get("containerPort").(int)
				return n
			}
		}
	}
	return 0
}

// checkNATSNetworkPolicy checks that the NetworkPolicies selecting the NATS pods admit only ssfd pods to the
// client port, only NATS pods to the route port, and nobody to any other port (monitoring).
func checkNATSNetworkPolicy(t *testing.T, objs map[string]manifest, ssfd, sts manifest) {
	t.Helper()
	podLabels := func(m manifest) map[string]any {
		l, _ := m.get("spec", "template", "metadata", "labels").(map[string]any)
		return l
	}
	// selects reports whether a podSelector with matchLabels only (not empty) selects pods with labels.
	selects := func(sel manifest, labels map[string]any) bool {
		ml, _ := sel.get("matchLabels").(map[string]any)
		if len(ml) == 0 || sel.get("matchExpressions") != nil {
			return false
		}
		for k, v := range ml {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	natsPods, ssfdPods := podLabels(sts), podLabels(ssfd)
	allowed := map[int][]string{} // NATS port (0: every port) → the peers admitted to it
	policies := 0
	for key, np := range objs {
		if !strings.HasPrefix(key, "NetworkPolicy/") {
			continue
		}
		sel, _ := np.get("spec", "podSelector").(map[string]any)
		ml, _ := sel["matchLabels"].(map[string]any)
		if len(ml) > 0 && !selects(manifest(sel), natsPods) {
			continue
		}
		types, _ := np.get("spec", "policyTypes").([]any)
		if !slices.Contains(types, any("Ingress")) && np.get("spec", "ingress") == nil {
			continue
		}
		policies++
		rules, _ := np.get("spec", "ingress").([]any)
		for _, r := range rules {
			r := manifest(r.(map[string]any))
			var peers []string
			from, _ := r.get("from").([]any)
			if len(from) == 0 {
				peers = append(peers, "anyone")
			}
			for _, f := range from {
				f := manifest(f.(map[string]any))
				ps, _ := f.get("podSelector").(map[string]any)
				switch {
				case f.get("ipBlock") != nil || f.get("namespaceSelector") != nil || ps == nil:
					peers = append(peers, "other")
				case selects(manifest(ps), ssfdPods):
					peers = append(peers, "ssfd")
				case selects(manifest(ps), natsPods):
					peers = append(peers, "nats")
				default:
					peers = append(peers, "other")
				}
			}
			ports, _ := r.get("ports").([]any)
			if len(ports) == 0 {
				allowed[0] = append(allowed[0], peers...)
			}
			for _, p := range ports {
				n := containerPort(sts, manifest(p.(map[string]any)).get("port"))
				allowed[n] = append(allowed[n], peers...)
			}
		}
	}
	if policies == 0 {
		t.Fatal("no NetworkPolicy restricts ingress to the NATS pods")
	}
	for port, peers := range allowed {
		want := map[int]string{4222: "ssfd", 6222: "nats"}[port]
		where := fmt.Sprint("port ", port)
		if port == 0 {
			where = "every port"
		}
		for _, p := range peers {
			if p != want {
				t.Errorf("a NetworkPolicy admits %s to NATS %s; only ssfd pods may reach 4222, only nats pods 6222, nobody else", p, where)
			}
		}
	}
	for port, peer := range map[int]string{4222: "ssfd", 6222: "nats"} {
		if !slices.Contains(allowed[port], peer) {
			t.Errorf("NetworkPolicy does not admit %s pods to NATS port %d", peer, port)
		}
	}
}
