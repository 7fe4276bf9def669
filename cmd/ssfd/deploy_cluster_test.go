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
	if len(issuers) != 1 {
		t.Errorf("the replicas have different issuers %v; all must use the load balancer's", issuers)
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
	checkNATSConfig(t, objs, sts, nodes)
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
	resolved := map[string]string{}
	for name, v := range env {
		if strings.HasPrefix(v, "from:") {
			resolved[name] = "placeholder0"
		}
	}
	for name, v := range env {
		if !strings.HasPrefix(v, "from:") {
			for ref, val := range resolved {
				v = strings.ReplaceAll(v, "$("+ref+")", val)
			}
			resolved[name] = v
		}
	}
	serveAccepts(t, "Deployment ssfd", []string{"--config", path}, resolved)
}

// checkNATSConfig loads the StatefulSet's nats.conf with nats-server's own parser, its environment variables set
// to placeholders, and checks that it enables JetStream and routes to every node.
func checkNATSConfig(t *testing.T, objs map[string]manifest, sts manifest, nodes []string) {
	t.Helper()
	cm := objs["ConfigMap/nats"]
	if cm == nil {
		t.Fatal("no ConfigMap nats")
	}
	for name := range containerEnv(sts) {
		t.Setenv(name, "placeholder")
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
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Hostname())
	}
	for _, n := range nodes {
		if !slices.Contains(routes, n) {
			t.Errorf("nats.conf: routes %v lack %s", routes, n)
		}
	}
	if len(opts.Users) == 0 && opts.Username == "" && len(opts.Nkeys) == 0 {
		t.Error("nats.conf: NATS accepts clients without authentication; SSFD_keys holds private keys")
	}
}
