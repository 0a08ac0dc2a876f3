package deploy_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// composeService is the subset of a compose service the checks read.
type composeService struct {
	name            string
	Profiles        []string          `yaml:"profiles"`
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Tmpfs           []string          `yaml:"tmpfs"`
	Ports           []string          `yaml:"ports"`
	StopSignal      string            `yaml:"stop_signal"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	DependsOn       map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// interpolation is compose's variable syntax: $$, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?message}, ${VAR?message}.
var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate substitutes env into the compose file as compose does; a
// required variable missing from env is an error.
func interpolate(raw string, env map[string]string) (string, error) {
	var missing []string
	out := interpolation.ReplaceAllStringFunc(raw, func(m string) string {
		if m == "$$" {
			return "$"
		}
		p := interpolation.FindStringSubmatch(m)
		v, set := env[p[1]]
		empty := !set || (strings.HasPrefix(p[2], ":") && v == "")
		switch strings.TrimPrefix(p[2], ":") {
		case "-":
			if empty {
				return p[3]
			}
		case "?":
			if empty {
				missing = append(missing, p[1])
			}
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("required variables missing: %v", missing)
	}
	return out, nil
}

// loadCompose reads docker-compose.yml with every variable it names set to
// a password-like value, as an operator's .env would.
func loadCompose(t *testing.T) (map[string]*composeService, string) {
	t.Helper()
	root := filepath.Dir(testenv.DeployDir(t))
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Every variable but the optional settings: mail (off unless SMTP_HOST)
	// and those with a default of their own.
	env := map[string]string{}
	defaulted := map[string]bool{}
	for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
		if m[1] == "" || strings.HasPrefix(m[1], "SMTP_") {
			continue
		}
		env[m[1]] = "v" + strings.ToLower(strings.ReplaceAll(m[1], "_", ""))
		defaulted[m[1]] = defaulted[m[1]] || (strings.HasSuffix(m[2], "-") && m[3] != "")
	}
	for v := range defaulted {
		if defaulted[v] {
			delete(env, v)
		}
	}
	env["ORGBRIDGE_PUBLIC_URL"] = "https://orgbridge.example.com"
	env["ORGBRIDGE_ENCRYPTION_KEYS"] = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	env["ORGBRIDGE_ADMIN_TOKEN"] = strings.Repeat("t", 24)
	text, err := interpolate(string(raw), env)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var file struct {
		Services map[string]*composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(text), &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, s := range file.Services {
		s.name = name
	}
	return file.Services, root
}

// runs reports whether the service's command names file (a base name, e.g.
// "cluster.conf" or "sentinel.sh").
func (s *composeService) runs(file string) bool {
	for _, a := range s.Command {
		for _, f := range strings.Fields(a) {
			if filepath.Base(f) == file {
				return true
			}
		}
	}
	return false
}

func (s *composeService) inCluster() bool { return slices.Contains(s.Profiles, "cluster") }

func servicesRunning(services map[string]*composeService, file string) []*composeService {
	var out []*composeService
	for _, s := range services {
		if s.runs(file) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *composeService) int { return strings.Compare(a.name, b.name) })
	return out
}

// TestComposeFile checks docker-compose.yml for both shapes: the files each
// service mounts and runs exist, the default services work without the
// cluster profile (no dependency on it, no variable only it needs), the two
// shapes share no host port, and every dependency exists.
func TestComposeFile(t *testing.T) {
	services, root := loadCompose(t)
	cluster := 0
	ports := map[string]string{}
	for name, s := range services {
		if s.inCluster() {
			cluster++
		}
		for dep := range s.DependsOn {
			d, ok := services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is no service", name, dep)
			} else if !s.inCluster() && d.inCluster() {
				t.Errorf("%s (default) depends on %s of the cluster profile: `docker compose up` would not start it", name, dep)
			}
		}
		for _, p := range s.Ports {
			host := p[:strings.LastIndex(p, ":")]
			if other, ok := ports[host]; ok {
				t.Errorf("%s and %s both publish %s", name, other, host)
			}
			ports[host] = name
		}
		mounts := map[string]string{} // container path → host path
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue
			}
			host := filepath.Join(root, parts[0])
			if _, err := os.Stat(host); err != nil {
				t.Errorf("%s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = host
		}
		for _, a := range s.Command {
			for _, f := range strings.Fields(a) {
				for inContainer, host := range mounts {
					if rel, ok := strings.CutPrefix(f, inContainer+"/"); ok {
						if _, err := os.Stat(filepath.Join(host, rel)); err != nil {
							t.Errorf("%s runs %s, which is not in %s: %v", name, f, host, err)
						}
					}
				}
			}
		}
	}
	if cluster == 0 {
		t.Fatal("no service in the cluster profile")
	}
	for _, want := range []string{"nats", "redis", "ingress", "worker", "ingress-cluster", "worker-cluster"} {
		if _, ok := services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}

	// A plain `docker compose up` reads every variable of the file: a
	// required one only the cluster profile uses would stop it.
	raw, _ := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	required := map[bool]map[string]bool{true: {}, false: {}} // in cluster profile → variables
	for name, s := range services {
		walk(serviceNode(&doc, name), func(v string) {
			for _, m := range interpolation.FindAllStringSubmatch(v, -1) {
				if strings.TrimPrefix(m[2], ":") == "?" {
					required[s.inCluster()][m[1]] = true
				}
			}
		})
	}
	for v := range required[true] {
		if !required[false][v] {
			t.Errorf("the cluster profile requires %s (${%s:?…}), which `docker compose up` without it would then require too: default it (${%s:-}) and let the server refuse an empty one", v, v, v)
		}
	}
}

// serviceNode is the mapping of service name in docker-compose.yml.
func serviceNode(doc *yaml.Node, name string) *yaml.Node {
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "services" {
			continue
		}
		svcs := top.Content[i+1]
		for j := 0; j+1 < len(svcs.Content); j += 2 {
			if svcs.Content[j].Value == name {
				return svcs.Content[j+1]
			}
		}
	}
	return nil
}

// walk calls f with every scalar under n, following aliases (merged anchors).
func walk(n *yaml.Node, f func(string)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		walk(n.Alias, f)
		return
	}
	if n.Kind == yaml.ScalarNode {
		f(n.Value)
	}
	for _, c := range n.Content {
		walk(c, f)
	}
}

// TestComposeOrgbridgeServices loads each ingress and worker service's
// environment through orgbridge's configuration and checks it names the
// NATS and Redis services of its shape, with as many stream replicas as NATS
// nodes, only variables orgbridge reads, and a stop grace period above the
// shutdown timeout.
func TestComposeOrgbridgeServices(t *testing.T) {
	services, _ := loadCompose(t)
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	parts := 0
	for name, s := range services {
		if !strings.HasPrefix(s.Image, "orgbridge") {
			continue
		}
		parts++
		t.Run(name, func(t *testing.T) {
			for v := range s.Environment {
				if !known[v] {
					t.Errorf("%s is set but orgbridge reads no such variable (config.Vars)", v)
				}
			}
			cfg, err := config.Load(func(k string) string { return s.Environment[k] })
			if err != nil {
				t.Fatalf("orgbridge refuses its environment: %v", err)
			}
			natsConf, sentinelScript := "nats.conf", ""
			if s.inCluster() {
				natsConf, sentinelScript = "cluster.conf", "sentinel.sh"
			}
			var natsNodes []string
			for _, n := range servicesRunning(services, natsConf) {
				if n.inCluster() == s.inCluster() {
					natsNodes = append(natsNodes, "nats://"+net.JoinHostPort(n.name, "4222"))
				}
			}
			if got := strings.Split(cfg.NATSURL, ","); len(natsNodes) == 0 || !slices.Equal(got, natsNodes) {
				t.Errorf("NATS_URL %s; want the NATS services of its shape %v", cfg.NATSURL, natsNodes)
			}
			if cfg.Streams.Replicas != len(natsNodes) {
				t.Errorf("ORGBRIDGE_STREAM_REPLICAS %d with %d NATS nodes", cfg.Streams.Replicas, len(natsNodes))
			}
			if s.inCluster() {
				var want []string
				for _, n := range servicesRunning(services, sentinelScript) {
					want = append(want, n.Environment["REDIS_ANNOUNCE"])
				}
				if cfg.Redis.Shape() != config.RedisSentinel || len(want) != 3 || !slices.Equal(cfg.Redis.SentinelAddrs, want) {
					t.Errorf("Redis %s; want the Sentinels %v", cfg.Redis, want)
				}
				if cfg.Redis.SentinelPassword == "" || cfg.Redis.Password == "" || cfg.Redis.Username == "" {
					t.Errorf("Redis user %q with password %v and Sentinel password %v: the scripts' ACLs need all three",
						cfg.Redis.Username, cfg.Redis.Password != "", cfg.Redis.SentinelPassword != "")
				}
			} else {
				u, err := url.Parse(cfg.Redis.URL)
				if err != nil || services[u.Hostname()] == nil || !services[u.Hostname()].runs("start.sh") {
					t.Errorf("REDIS_URL %s is not the Redis service", cfg.Redis)
				}
			}
			grace, err := time.ParseDuration(s.StopGracePeriod)
			if err != nil || grace <= cfg.ShutdownTimeout {
				t.Errorf("stop_grace_period %q is not above ORGBRIDGE_SHUTDOWN_TIMEOUT %s", s.StopGracePeriod, cfg.ShutdownTimeout)
			}
		})
	}
	if parts != 4 {
		t.Errorf("%d orgbridge services; want the ingress and the workers of both shapes", parts)
	}
}

// TestComposeNATSCluster loads deploy/nats/cluster.conf with each NATS node
// service's environment and checks the nodes route to each other by service
// name with the route password, have names of their own, and stop in lame
// duck mode within their grace period.
func TestComposeNATSCluster(t *testing.T) {
	services, _ := loadCompose(t)
	nodes := servicesRunning(services, "cluster.conf")
	if len(nodes) != 3 {
		t.Fatalf("%d services run cluster.conf; want 3", len(nodes))
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.name)
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		t.Run(n.name, func(t *testing.T) {
			for k, v := range n.Environment {
				t.Setenv(k, v)
			}
			opts, err := server.ProcessConfigFile(filepath.Join(testenv.DeployDir(t), "nats", "cluster.conf"))
			if err != nil {
				t.Fatalf("cluster.conf with %s's environment: %v", n.name, err)
			}
			if seen[opts.ServerName] || opts.ServerName == "" {
				t.Errorf("server name %q is not its own", opts.ServerName)
			}
			seen[opts.ServerName] = true
			var hosts []string
			for _, r := range opts.Routes {
				pass, _ := r.User.Password()
				if r.User.Username() != opts.Cluster.Username || pass != opts.Cluster.Password || pass == "" {
					t.Errorf("route %s does not carry the route user and password", r.Redacted())
				}
				if r.Port() != strconv.Itoa(opts.Cluster.Port) {
					t.Errorf("route %s is not on the cluster port %d", r.Redacted(), opts.Cluster.Port)
				}
				hosts = append(hosts, r.Hostname())
			}
			if !slices.Equal(hosts, names) {
				t.Errorf("routes to %v; want every node %v", hosts, names)
			}
			grace, err := time.ParseDuration(n.StopGracePeriod)
			if n.StopSignal != "SIGUSR2" || err != nil || grace <= opts.LameDuckDuration {
				t.Errorf("stops with %q within %q; want SIGUSR2 (lame duck mode) and more than %s", n.StopSignal, n.StopGracePeriod, opts.LameDuckDuration)
			}
			if !slices.Contains(append(n.Tmpfs, mountTargets(n)...), filepath.Dir(opts.PidFile)) {
				t.Errorf("nothing is mounted at %s for the pid file", filepath.Dir(opts.PidFile))
			}
			if !n.inCluster() {
				t.Errorf("%s is not in the cluster profile", n.name)
			}
		})
	}
}

func mountTargets(s *composeService) []string {
	var out []string
	for _, v := range s.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 {
			out = append(out, parts[1])
		}
	}
	return out
}

// TestComposeRedisSentinel checks the cluster profile's Redis services: each
// runs a script of deploy/redis with every variable it requires, announces
// its own service name, and they agree on the first primary and the
// Sentinels.
func TestComposeRedisSentinel(t *testing.T) {
	services, _ := loadCompose(t)
	data, sentinels := servicesRunning(services, "node.sh"), servicesRunning(services, "sentinel.sh")
	if len(data) != 3 || len(sentinels) != 3 {
		t.Fatalf("%d data nodes and %d Sentinels; want 3 of each", len(data), len(sentinels))
	}
	var sentinelAddrs []string
	for _, s := range sentinels {
		sentinelAddrs = append(sentinelAddrs, net.JoinHostPort(s.name, "26379"))
	}
	for _, s := range append(append([]*composeService(nil), data...), sentinels...) {
		script := "node.sh"
		port := "6379"
		if s.runs("sentinel.sh") {
			script, port = "sentinel.sh", "26379"
		}
		for _, v := range requiredVars(t, script) {
			if s.Environment[v] == "" {
				t.Errorf("%s: %s requires %s", s.name, script, v)
			}
		}
		if want := net.JoinHostPort(s.name, port); s.Environment["REDIS_ANNOUNCE"] != want {
			t.Errorf("%s announces %q; want %s", s.name, s.Environment["REDIS_ANNOUNCE"], want)
		}
		if s.Environment["REDIS_PRIMARY"] != data[0].Environment["REDIS_ANNOUNCE"] {
			t.Errorf("%s: first primary %q; want %s", s.name, s.Environment["REDIS_PRIMARY"], data[0].Environment["REDIS_ANNOUNCE"])
		}
		if s.Environment["REDIS_SENTINEL_ADDRS"] != strings.Join(sentinelAddrs, ",") {
			t.Errorf("%s: REDIS_SENTINEL_ADDRS %q; want %v", s.name, s.Environment["REDIS_SENTINEL_ADDRS"], sentinelAddrs)
		}
		if !s.inCluster() {
			t.Errorf("%s is not in the cluster profile", s.name)
		}
	}
}
