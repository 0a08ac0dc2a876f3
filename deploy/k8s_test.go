package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
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

// The subset of Kubernetes objects the checks read.
type (
	meta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	keyRef struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			FieldRef        *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	handler struct {
		Exec *struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		TCPSocket *struct {
			Port string `yaml:"port"`
		} `yaml:"tcpSocket"`
		Sleep *struct {
			Seconds int `yaml:"seconds"`
		} `yaml:"sleep"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []envVar `yaml:"env"`
		EnvFrom []struct {
			ConfigMapRef *keyRef `yaml:"configMapRef"`
			SecretRef    *keyRef `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Ports          []containerPort `yaml:"ports"`
		ReadinessProbe *handler        `yaml:"readinessProbe"`
		LivenessProbe  *handler        `yaml:"livenessProbe"`
		Lifecycle      *struct {
			PreStop *handler `yaml:"preStop"`
		} `yaml:"lifecycle"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []struct {
				Key string `yaml:"key"`
			} `yaml:"items"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	}
	workload struct {
		Kind     string `yaml:"kind"`
		Metadata meta   `yaml:"metadata"`
		Spec     struct {
			Replicas    int           `yaml:"replicas"`
			ServiceName string        `yaml:"serviceName"`
			Selector    labelSelector `yaml:"selector"`
			Template    struct {
				Metadata meta `yaml:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
					Containers                    []container `yaml:"containers"`
					Volumes                       []volume    `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata meta `yaml:"metadata"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	service struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			ClusterIP                string            `yaml:"clusterIP"`
			PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
			Selector                 map[string]string `yaml:"selector"`
			Ports                    []struct {
				Name       string `yaml:"name"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	pdb struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			MaxUnavailable *int          `yaml:"maxUnavailable"`
			MinAvailable   *int          `yaml:"minAvailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	hpa struct {
		APIVersion string `yaml:"apiVersion"`
		Metadata   meta   `yaml:"metadata"`
		Spec       struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
			MaxReplicas int `yaml:"maxReplicas"`
			Metrics     []struct {
				Type     string `yaml:"type"`
				Resource struct {
					Name   string `yaml:"name"`
					Target struct {
						Type               string `yaml:"type"`
						AverageUtilization int    `yaml:"averageUtilization"`
					} `yaml:"target"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	configMap struct {
		Metadata meta              `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	kustomization struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
)

// k8sDeploy is everything `kubectl apply -k deploy/` creates, plus the
// secrets the manifests' headers tell the operator to create.
type k8sDeploy struct {
	workloads  []workload
	services   []service
	pdbs       []pdb
	hpas       []hpa
	configMaps map[string]map[string]string // name → key → value ("" for generated files)
	secrets    map[string][]string          // name → keys, from the `kubectl create secret` lines
}

func loadK8s(t *testing.T) *k8sDeploy {
	t.Helper()
	deployDir := testenv.DeployDir(t)
	raw, err := os.ReadFile(filepath.Join(deployDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	d := &k8sDeploy{configMaps: map[string]map[string]string{}, secrets: map[string][]string{}}
	for _, g := range k.ConfigMapGenerator {
		d.configMaps[g.Name] = map[string]string{}
		for _, f := range g.Files {
			if _, err := os.Stat(filepath.Join(deployDir, f)); err != nil {
				t.Errorf("kustomization.yaml: ConfigMap %s: %v", g.Name, err)
			}
			d.configMaps[g.Name][filepath.Base(f)] = ""
		}
	}
	manifests, _ := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if len(manifests) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	for _, m := range manifests {
		rel, _ := filepath.Rel(deployDir, m)
		if !slices.Contains(k.Resources, rel) {
			t.Errorf("kustomization.yaml does not list %s: `kubectl apply -k deploy/` would leave it out", rel)
		}
	}
	for _, r := range k.Resources {
		d.load(t, filepath.Join(deployDir, r))
	}
	return d
}

// secretCommand is a `kubectl create secret generic NAME --from-literal=KEY=…`
// command in a manifest's comments, its lines joined.
var (
	secretCommand = regexp.MustCompile(`kubectl create secret generic (\S+)(.*)`)
	fromLiteral   = regexp.MustCompile(`--from-literal=([^=\s]+)=`)
)

func (d *k8sDeploy) load(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, line := range strings.Split(string(raw), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
			comments = append(comments, strings.TrimSpace(c))
		}
	}
	joined := strings.ReplaceAll(strings.Join(comments, "\n"), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if m := secretCommand.FindStringSubmatch(line); m != nil {
			for _, k := range fromLiteral.FindAllStringSubmatch(m[2], -1) {
				d.secrets[m[1]] = append(d.secrets[m[1]], k[1])
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := node.Decode(&head); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		decode := func(v any) {
			if err := node.Decode(v); err != nil {
				t.Fatalf("%s: %s: %v", path, head.Kind, err)
			}
		}
		switch head.Kind {
		case "Deployment", "StatefulSet":
			var w workload
			decode(&w)
			d.workloads = append(d.workloads, w)
		case "Service":
			var s service
			decode(&s)
			d.services = append(d.services, s)
		case "PodDisruptionBudget":
			var p pdb
			decode(&p)
			d.pdbs = append(d.pdbs, p)
		case "HorizontalPodAutoscaler":
			var h hpa
			decode(&h)
			d.hpas = append(d.hpas, h)
		case "ConfigMap":
			var c configMap
			decode(&c)
			d.configMaps[c.Metadata.Name] = c.Data
		default:
			t.Errorf("%s: a %s, which no check here reads: add one", path, head.Kind)
		}
	}
}

func (d *k8sDeploy) workload(kind, name string) *workload {
	for i, w := range d.workloads {
		if w.Kind == kind && w.Metadata.Name == name {
			return &d.workloads[i]
		}
	}
	return nil
}

// statefulSetRunning is the StatefulSet one of whose containers runs image
// (a prefix, e.g. "nats:").
func (d *k8sDeploy) statefulSetRunning(t *testing.T, image string) (*workload, *container) {
	t.Helper()
	for i, w := range d.workloads {
		for j, c := range w.Spec.Template.Spec.Containers {
			if w.Kind == "StatefulSet" && strings.HasPrefix(c.Image, image) {
				return &d.workloads[i], &d.workloads[i].Spec.Template.Spec.Containers[j]
			}
		}
	}
	t.Fatalf("no StatefulSet runs %s", image)
	return nil, nil
}

// podHosts are the DNS names of a StatefulSet's pods through its headless
// Service: <name>-<i>.<serviceName>.
func podHosts(w *workload) []string {
	var out []string
	for i := range w.Spec.Replicas {
		out = append(out, w.Metadata.Name+"-"+strconv.Itoa(i)+"."+w.Spec.ServiceName)
	}
	return out
}

func (c *container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name || strconv.Itoa(p.ContainerPort) == name {
			return p.ContainerPort
		}
	}
	return 0
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// env is a container's environment as Kubernetes gives it: envFrom first,
// then env in order with $(VAR) expanded from what came before. Secrets
// are "secret-<name>-<key>"; the pod's name is podName.
func (d *k8sDeploy) env(c *container, podName string) map[string]string {
	out := map[string]string{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil {
			for k, v := range d.configMaps[f.ConfigMapRef.Name] {
				out[k] = v
			}
		}
		if f.SecretRef != nil {
			for _, k := range d.secrets[f.SecretRef.Name] {
				out[k] = "secret-" + f.SecretRef.Name + "-" + k
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = dependentVar.ReplaceAllStringFunc(e.Value, func(ref string) string {
				if v, ok := out[ref[2:len(ref)-1]]; ok {
					return v
				}
				return ref // Kubernetes leaves an unknown reference as it is
			})
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = "secret-" + e.ValueFrom.SecretKeyRef.Name + "-" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.ConfigMapKeyRef != nil:
			out[e.Name] = d.configMaps[e.ValueFrom.ConfigMapKeyRef.Name][e.ValueFrom.ConfigMapKeyRef.Key]
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			out[e.Name] = podName
		}
	}
	return out
}

var dependentVar = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// TestK8sManifests checks every workload of `kubectl apply -k deploy/` for
// what a reviewer would: probes on ports the container has, a disruption
// budget over its pods, references to ConfigMaps, Secrets and volumes that
// exist, $(VAR) references to variables set before them.
func TestK8sManifests(t *testing.T) {
	d := loadK8s(t)
	if len(d.workloads) == 0 {
		t.Fatal("no Deployment or StatefulSet in deploy/k8s")
	}
	for _, w := range d.workloads {
		t.Run(w.Kind+"/"+w.Metadata.Name, func(t *testing.T) {
			pod := w.Spec.Template.Metadata.Labels
			if !subset(w.Spec.Selector.MatchLabels, pod) {
				t.Errorf("selector %v does not match the pod labels %v", w.Spec.Selector.MatchLabels, pod)
			}
			budgets := 0
			for _, p := range d.pdbs {
				if subset(p.Spec.Selector.MatchLabels, pod) {
					budgets++
					if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
						t.Errorf("PodDisruptionBudget %s sets neither or both of maxUnavailable and minAvailable", p.Metadata.Name)
					}
					if p.Spec.MaxUnavailable != nil && (*p.Spec.MaxUnavailable < 1 || *p.Spec.MaxUnavailable >= max(w.Spec.Replicas, 1)) {
						t.Errorf("PodDisruptionBudget %s: maxUnavailable %d of %d replicas", p.Metadata.Name, *p.Spec.MaxUnavailable, w.Spec.Replicas)
					}
				}
			}
			if budgets != 1 {
				t.Errorf("%d PodDisruptionBudgets select its pods %v; want 1", budgets, pod)
			}
			if w.Kind == "StatefulSet" {
				var headless *service
				for i, s := range d.services {
					if s.Metadata.Name == w.Spec.ServiceName {
						headless = &d.services[i]
					}
				}
				if headless == nil || headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses || !subset(headless.Spec.Selector, pod) {
					t.Errorf("serviceName %q is not a headless Service over its pods that publishes pods before they are ready (%+v)", w.Spec.ServiceName, headless)
				}
			}
			volumes := map[string]volume{}
			for _, v := range w.Spec.Template.Spec.Volumes {
				volumes[v.Name] = v
				if v.ConfigMap != nil {
					keys, ok := d.configMaps[v.ConfigMap.Name]
					if !ok {
						t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
					}
					for _, it := range v.ConfigMap.Items {
						if _, ok := keys[it.Key]; !ok {
							t.Errorf("volume %s: ConfigMap %s has no key %s", v.Name, v.ConfigMap.Name, it.Key)
						}
					}
				}
				if v.Secret != nil {
					if _, ok := d.secrets[v.Secret.SecretName]; !ok {
						t.Errorf("volume %s: no Secret %s is created", v.Name, v.Secret.SecretName)
					}
				}
			}
			for _, c := range w.Spec.Template.Spec.Containers {
				checkContainer(t, d, &w, &c, volumes)
			}
		})
	}
	for _, s := range d.services {
		found := false
		for _, w := range d.workloads {
			if !subset(s.Spec.Selector, w.Spec.Template.Metadata.Labels) {
				continue
			}
			found = true
			for _, p := range s.Spec.Ports {
				ok := false
				for _, c := range w.Spec.Template.Spec.Containers {
					ok = ok || c.port(p.TargetPort) != 0
				}
				if !ok {
					t.Errorf("Service %s: targetPort %q is no port of %s", s.Metadata.Name, p.TargetPort, w.Metadata.Name)
				}
			}
		}
		if !found {
			t.Errorf("Service %s selects no pods (%v)", s.Metadata.Name, s.Spec.Selector)
		}
	}
}

func checkContainer(t *testing.T, d *k8sDeploy, w *workload, c *container, volumes map[string]volume) {
	t.Helper()
	checkHandler := func(what string, h *handler) {
		switch {
		case h == nil:
			t.Errorf("container %s has no %s", c.Name, what)
		case h.HTTPGet != nil:
			if c.port(h.HTTPGet.Port) == 0 {
				t.Errorf("container %s: %s on port %q, which it does not have", c.Name, what, h.HTTPGet.Port)
			}
		case h.TCPSocket != nil:
			if c.port(h.TCPSocket.Port) == 0 {
				t.Errorf("container %s: %s on port %q, which it does not have", c.Name, what, h.TCPSocket.Port)
			}
		case h.Exec != nil:
			if len(h.Exec.Command) == 0 {
				t.Errorf("container %s: %s runs no command", c.Name, what)
			}
		case h.Sleep != nil:
			if what != "preStop" {
				t.Errorf("container %s: %s sleeps", c.Name, what)
			}
		default:
			t.Errorf("container %s: %s does nothing", c.Name, what)
		}
	}
	checkHandler("readinessProbe", c.ReadinessProbe)
	checkHandler("livenessProbe", c.LivenessProbe)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		checkHandler("preStop", c.Lifecycle.PreStop)
	}
	defined := map[string]bool{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil {
			if _, ok := d.configMaps[f.ConfigMapRef.Name]; !ok {
				t.Errorf("container %s: envFrom ConfigMap %s does not exist", c.Name, f.ConfigMapRef.Name)
			}
		}
		if f.SecretRef != nil {
			if _, ok := d.secrets[f.SecretRef.Name]; !ok {
				t.Errorf("container %s: envFrom Secret %s is created by no command in the headers", c.Name, f.SecretRef.Name)
			}
		}
	}
	for _, e := range c.Env {
		for _, ref := range dependentVar.FindAllString(e.Value, -1) {
			if !defined[ref[2:len(ref)-1]] {
				t.Errorf("container %s: %s uses %s, not set before it (Kubernetes would leave it unexpanded)", c.Name, e.Name, ref)
			}
		}
		defined[e.Name] = true
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil && !slices.Contains(d.secrets[r.Name], r.Key) {
			t.Errorf("container %s: %s comes from key %q of Secret %s, which the headers' `kubectl create secret` does not create (keys %v)",
				c.Name, e.Name, r.Key, r.Name, d.secrets[r.Name])
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			if _, ok := d.configMaps[r.Name][r.Key]; !ok {
				t.Errorf("container %s: %s comes from key %q of ConfigMap %s, which has none", c.Name, e.Name, r.Key, r.Name)
			}
		}
	}
	claims := map[string]bool{}
	for _, vc := range w.Spec.VolumeClaimTemplates {
		claims[vc.Metadata.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !claims[m.Name] {
			t.Errorf("container %s mounts %s, which is no volume or volume claim", c.Name, m.Name)
		}
	}
}

// TestK8sOrgbridgeOnTheCluster loads the ingress's and the workers'
// environment as Kubernetes gives it through orgbridge's own configuration
// and checks that it names the NATS and Redis pods of the other manifests,
// on their ports, with the replicas the NATS cluster has, that every
// variable is one orgbridge reads, that each port the container opens is
// one it listens on, and that the grace period covers the shutdown.
func TestK8sOrgbridgeOnTheCluster(t *testing.T) {
	d := loadK8s(t)
	nats, natsC := d.statefulSetRunning(t, "nats:")
	redisSts, _ := d.statefulSetRunning(t, "redis:")
	var sentinel *container
	for i, c := range redisSts.Spec.Template.Spec.Containers {
		if strings.Contains(strings.Join(c.Command, " "), "sentinel.sh") {
			sentinel = &redisSts.Spec.Template.Spec.Containers[i]
		}
	}
	if sentinel == nil {
		t.Fatalf("StatefulSet %s runs no sentinel.sh", redisSts.Metadata.Name)
	}
	master := d.env(sentinel, redisSts.Metadata.Name+"-0")["REDIS_SENTINEL_MASTER"]
	if master == "" {
		master = "orgbridge" // sentinel.sh's default
	}
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	parts := 0
	for _, w := range d.workloads {
		for _, c := range w.Spec.Template.Spec.Containers {
			if !strings.HasPrefix(c.Image, "orgbridge") {
				continue
			}
			parts++
			t.Run(w.Metadata.Name, func(t *testing.T) {
				env := d.env(&c, w.Metadata.Name+"-abc")
				for name := range env {
					if !known[name] {
						t.Errorf("%s is set but orgbridge reads no such variable (config.Vars)", name)
					}
				}
				cfg, err := config.Load(func(k string) string { return env[k] })
				if err != nil {
					t.Fatalf("orgbridge refuses its environment: %v", err)
				}
				var hosts []string
				for _, u := range strings.Split(cfg.NATSURL, ",") {
					pu, err := url.Parse(u)
					if err != nil || pu.Port() != strconv.Itoa(natsC.port("client")) {
						t.Errorf("NATS_URL %s: not on the NATS pods' client port %d", u, natsC.port("client"))
						continue
					}
					hosts = append(hosts, pu.Hostname())
				}
				if want := podHosts(nats); !slices.Equal(hosts, want) {
					t.Errorf("NATS_URL names %v; want every NATS pod %v", hosts, want)
				}
				if cfg.Streams.Replicas != nats.Spec.Replicas {
					t.Errorf("ORGBRIDGE_STREAM_REPLICAS is %d on a %d-node cluster", cfg.Streams.Replicas, nats.Spec.Replicas)
				}
				if cfg.Redis.Shape() != config.RedisSentinel || cfg.Redis.SentinelMaster != master {
					t.Errorf("Redis %s; want the Sentinels' primary %q", cfg.Redis, master)
				}
				var want []string
				for _, h := range podHosts(redisSts) {
					want = append(want, net.JoinHostPort(h, strconv.Itoa(sentinel.port("sentinel"))))
				}
				if !slices.Equal(cfg.Redis.SentinelAddrs, want) {
					t.Errorf("REDIS_SENTINEL_ADDRS %v; want every Sentinel %v", cfg.Redis.SentinelAddrs, want)
				}
				if cfg.Redis.Username == "" || cfg.Redis.Password == "" || cfg.Redis.SentinelPassword == "" {
					t.Errorf("Redis user %q, password set %v, Sentinel password set %v: the ACLs of redis.yaml need all three",
						cfg.Redis.Username, cfg.Redis.Password != "", cfg.Redis.SentinelPassword != "")
				}
				listens := map[int]bool{}
				for _, addr := range []string{cfg.HTTPAddr, cfg.MetricsAddr, cfg.AdminAddr} {
					if _, p, err := net.SplitHostPort(addr); err == nil {
						n, _ := strconv.Atoi(p)
						listens[n] = true
					}
				}
				for _, p := range c.Ports {
					if !listens[p.ContainerPort] {
						t.Errorf("port %s (%d) is none orgbridge listens on (%s, %s, %s)", p.Name, p.ContainerPort, cfg.HTTPAddr, cfg.MetricsAddr, cfg.AdminAddr)
					}
				}
				grace := w.Spec.Template.Spec.TerminationGracePeriodSeconds
				need := cfg.ShutdownTimeout
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
					need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
				}
				if grace == nil || time.Duration(*grace)*time.Second <= need {
					t.Errorf("terminationGracePeriodSeconds %v is not above the preStop sleep and ORGBRIDGE_SHUTDOWN_TIMEOUT (%s)", grace, need)
				}
			})
		}
	}
	if parts < 2 {
		t.Fatalf("%d orgbridge containers; want the ingress and the workers", parts)
	}

	if len(d.hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers; want one, for the ingress", len(d.hpas))
	}
	h := d.hpas[0]
	target := d.workload(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
	if h.APIVersion != "autoscaling/v2" || target == nil || !strings.Contains(target.Metadata.Name, "ingress") {
		t.Fatalf("HorizontalPodAutoscaler %s (%s) scales %s %s; want the ingress Deployment", h.Metadata.Name, h.APIVersion, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
	}
	if h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < h.Spec.MinReplicas {
		t.Errorf("replicas %d to %d; want at least 2 (the disruption budget lets one go)", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	cpu := false
	for _, m := range h.Spec.Metrics {
		cpu = cpu || (m.Type == "Resource" && m.Resource.Name == "cpu" && m.Resource.Target.Type == "Utilization" && m.Resource.Target.AverageUtilization > 0)
	}
	if !cpu {
		t.Errorf("HorizontalPodAutoscaler %s has no CPU utilization target", h.Metadata.Name)
	}
	for _, c := range target.Spec.Template.Spec.Containers {
		if c.Resources.Requests["cpu"] == "" {
			t.Errorf("container %s has no CPU request: a utilization target needs one", c.Name)
		}
	}
}

// TestK8sNATSRunsClusterConf loads deploy/nats/cluster.conf with the NATS
// container's environment as Kubernetes gives it (to pod 0) and checks that
// the pods find each other: routes to every pod's DNS name on the cluster
// port with the route password, the client port the container opens, the
// health checks on the monitoring address, the lame-duck signal to the pid
// file on a volume, a grace period above the lame duck duration.
func TestK8sNATSRunsClusterConf(t *testing.T) {
	d := loadK8s(t)
	sts, c := d.statefulSetRunning(t, "nats:")
	pod := sts.Metadata.Name + "-0"
	env := d.env(c, pod)
	for k, v := range env {
		t.Setenv(k, v)
	}
	i := slices.Index(c.Args, "-c")
	if i < 0 || i+1 == len(c.Args) {
		t.Fatalf("nats-server args %v name no config file", c.Args)
	}
	confPath := c.Args[i+1]
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && m.MountPath == filepath.Dir(confPath) {
				keys := d.configMaps[v.ConfigMap.Name]
				_, conf := keys[filepath.Base(confPath)]
				_, accounts := keys["accounts.conf"]
				mounted = conf && accounts
			}
		}
	}
	if !mounted {
		t.Errorf("%s and the accounts.conf it includes are not mounted from a ConfigMap", confPath)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(testenv.DeployDir(t), "nats", filepath.Base(confPath)))
	if err != nil {
		t.Fatalf("%s with the pod's environment: %v", confPath, err)
	}
	if opts.ServerName != pod {
		t.Errorf("server name %q; want the pod's name %q", opts.ServerName, pod)
	}
	if opts.Port != c.port("client") || opts.Cluster.Port != c.port("cluster") {
		t.Errorf("nats-server listens on %d and routes on %d; the container opens client %d and cluster %d",
			opts.Port, opts.Cluster.Port, c.port("client"), c.port("cluster"))
	}
	var hosts []string
	for _, r := range opts.Routes {
		user, pass := "", ""
		if r.User != nil {
			user = r.User.Username()
			pass, _ = r.User.Password()
		}
		if user != opts.Cluster.Username || pass != opts.Cluster.Password || pass == "" {
			t.Errorf("route %s does not carry the route user and password the nodes require", r.Redacted())
		}
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("route %s is not on the cluster port %d", r.Redacted(), opts.Cluster.Port)
		}
		hosts = append(hosts, r.Hostname())
	}
	if want := podHosts(sts); !slices.Equal(hosts, want) {
		t.Errorf("routes to %v; want every pod %v", hosts, want)
	}
	monitor := "http://" + net.JoinHostPort(opts.HTTPHost, strconv.Itoa(opts.HTTPPort)) + "/healthz"
	for what, p := range map[string]*handler{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.Exec == nil || !slices.ContainsFunc(p.Exec.Command, func(a string) bool { return strings.HasPrefix(a, monitor) }) {
			t.Errorf("%s probe %+v does not ask %s", what, p, monitor)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil ||
		!slices.Contains(c.Lifecycle.PreStop.Exec.Command, "ldm="+opts.PidFile) {
		t.Errorf("preStop does not signal lame duck mode to the pid file %s", opts.PidFile)
	}
	pidMounted, storeMounted := false, false
	for _, m := range c.VolumeMounts {
		pidMounted = pidMounted || m.MountPath == filepath.Dir(opts.PidFile)
		storeMounted = storeMounted || (m.Name == "data" && strings.HasPrefix(opts.StoreDir, m.MountPath+"/"))
	}
	if !pidMounted || !storeMounted {
		t.Errorf("pid file %s on a volume: %v; JetStream store %s on the pod's claim: %v", opts.PidFile, pidMounted, opts.StoreDir, storeMounted)
	}
	if g := sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= opts.LameDuckDuration {
		t.Errorf("terminationGracePeriodSeconds %v is not above lame_duck_duration %s", g, opts.LameDuckDuration)
	}
}

// TestK8sRedisRunsTheScripts checks that the Redis pods run deploy/redis's
// scripts with every variable the scripts require, announcing their pod's
// DNS name on the port the container opens, and watching redis-0 first.
func TestK8sRedisRunsTheScripts(t *testing.T) {
	d := loadK8s(t)
	sts, _ := d.statefulSetRunning(t, "redis:")
	pod := sts.Metadata.Name + "-1"
	hosts := podHosts(sts)
	var dataPort, sentinelPort int
	for _, c := range sts.Spec.Template.Spec.Containers {
		dataPort = max(dataPort, c.port("redis"))
		sentinelPort = max(sentinelPort, c.port("sentinel"))
	}
	scripts := 0
	for _, c := range sts.Spec.Template.Spec.Containers {
		script := ""
		if len(c.Command) >= 2 && c.Command[0] == "sh" {
			script = filepath.Base(c.Command[1])
		}
		required := requiredVars(t, script)
		if len(required) == 0 {
			t.Errorf("container %s runs %v, none of deploy/redis's scripts", c.Name, c.Command)
			continue
		}
		scripts++
		// Every script it runs or sources is mounted beside it.
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			for _, v := range sts.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && m.MountPath == filepath.Dir(c.Command[1]) {
					for _, it := range v.ConfigMap.Items {
						mounted[it.Key] = true
					}
				}
			}
		}
		for _, f := range scriptFiles(t, script) {
			if !mounted[f] {
				t.Errorf("container %s runs %s, which needs %s: not mounted in %s", c.Name, script, f, filepath.Dir(c.Command[1]))
			}
		}
		env := d.env(&c, pod)
		for _, v := range required {
			if env[v] == "" {
				t.Errorf("container %s: %s requires %s", c.Name, script, v)
			}
		}
		own := dataPort
		if script == "sentinel.sh" {
			own = sentinelPort
		}
		if want := net.JoinHostPort(hosts[1], strconv.Itoa(own)); env["REDIS_ANNOUNCE"] != want {
			t.Errorf("container %s announces %q; want its pod's name and port %s", c.Name, env["REDIS_ANNOUNCE"], want)
		}
		if want := net.JoinHostPort(hosts[0], strconv.Itoa(dataPort)); env["REDIS_PRIMARY"] != want {
			t.Errorf("container %s: first primary %q; want %s", c.Name, env["REDIS_PRIMARY"], want)
		}
		var sentinels []string
		for _, h := range hosts {
			sentinels = append(sentinels, net.JoinHostPort(h, strconv.Itoa(sentinelPort)))
		}
		if env["REDIS_SENTINEL_ADDRS"] != strings.Join(sentinels, ",") {
			t.Errorf("container %s: REDIS_SENTINEL_ADDRS %q; want every Sentinel %v", c.Name, env["REDIS_SENTINEL_ADDRS"], sentinels)
		}
	}
	if scripts != 2 {
		t.Errorf("%d containers run deploy/redis's scripts; want the data node and the Sentinel", scripts)
	}
}

var requiredVar = regexp.MustCompile(`: "\$\{([A-Z_]+):\?`)
var runsScript = regexp.MustCompile(`sh "\$here/([a-z]+\.sh)"`)
var sourcesScript = regexp.MustCompile(`(?m)^\. "\$here/([a-z]+\.sh)"`)

// scriptFiles are a script of deploy/redis and every script it runs or
// sources, and they theirs.
func scriptFiles(t *testing.T, script string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.DeployDir(t), "redis", script))
	if err != nil {
		t.Fatalf("reading %s: %v", script, err)
	}
	out := []string{script}
	for _, re := range []*regexp.Regexp{runsScript, sourcesScript} {
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			out = append(out, scriptFiles(t, m[1])...)
		}
	}
	return out
}

// requiredVars are the variables a script of deploy/redis stops without
// (`: "${VAR:?…}"`), its own and those of the scripts it runs.
func requiredVars(t *testing.T, script string) []string {
	t.Helper()
	if script == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(testenv.DeployDir(t), "redis", script))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range requiredVar.FindAllStringSubmatch(string(raw), -1) {
		out = append(out, m[1])
	}
	for _, m := range runsScript.FindAllStringSubmatch(string(raw), -1) {
		out = append(out, requiredVars(t, m[1])...)
	}
	return out
}

// TestK8sNATSRefusesAnEmptyRoutePassword runs the NATS container's command
// as its image's shell would: with an empty route password it exits before
// nats-server starts, saying why; with one it hands its arguments to
// nats-server (a stand-in here that prints them).
func TestK8sNATSRefusesAnEmptyRoutePassword(t *testing.T) {
	d := loadK8s(t)
	_, c := d.statefulSetRunning(t, "nats:")
	if len(c.Command) < 3 || c.Command[0] != "sh" || c.Command[1] != "-c" {
		t.Fatalf("the NATS container's command %q is not a shell guard", c.Command)
	}
	bin := t.TempDir()
	stand := "#!/bin/sh\necho \"nats-server $*\"\n"
	if err := os.WriteFile(filepath.Join(bin, "nats-server"), []byte(stand), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(password string) (string, error) {
		cmd := exec.Command(c.Command[0], append(c.Command[1:], c.Args...)...)
		cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "NATS_ROUTE_PASSWORD=" + password}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err == nil || !strings.Contains(out, "route key of the orgbridge-nats Secret is empty") || strings.Contains(out, "nats-server -c") {
		t.Fatalf("with an empty route password: %v\n%s", err, out)
	}
	out, err = run("s3cret")
	if err != nil || strings.TrimSpace(out) != "nats-server -c /etc/nats/cluster.conf" {
		t.Fatalf("with a route password: %v\n%s", err, out)
	}
}
