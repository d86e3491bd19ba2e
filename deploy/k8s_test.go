package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// strictUnmarshal decodes YAML into v the way the API server's strict field
// validation does: keys match json tags case-sensitively, and an unknown or
// duplicated field is an error. (sigs.k8s.io/yaml's UnmarshalStrict alone
// would accept "readinessprobe": encoding/json matches keys
// case-insensitively.)
func strictUnmarshal(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// object is one decoded manifest.
type object struct {
	source string // file, or kustomization directory, it came from
	kind   string
	name   string
	obj    any
}

// newObject returns an empty typed object for apiVersion and kind; the
// manifests may hold only these kinds.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

// decodeStrict decodes one YAML document into its k8s.io/api type; an
// unknown or duplicated field is an error.
func decodeStrict(source string, doc []byte) (object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	if err := strictUnmarshal(doc, obj); err != nil {
		return object{}, fmt.Errorf("%s: %s: %w", source, tm.Kind, err)
	}
	name := obj.(metav1.Object).GetName()
	if name == "" {
		return object{}, fmt.Errorf("%s: %s without a name", source, tm.Kind)
	}
	return object{source: source, kind: tm.Kind, name: name, obj: obj}, nil
}

// yamlDocs splits a multi-document YAML file, dropping empty documents.
func yamlDocs(b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}

// jsonPatchOp is one RFC 6902 operation of a kustomize patch file.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	From  string `json:"from,omitempty"`
	Value any    `json:"value,omitempty"`
}

// TestManifestFilesDecodeStrictly decodes every file under deploy/k8s:
// kustomization.yaml into kustomize's type, the JSON patches they name into
// RFC 6902 operations, everything else into k8s.io/api types, all strictly.
// A YAML file no kustomization refers to is an error too (it would never
// be applied).
func TestManifestFilesDecodeStrictly(t *testing.T) {
	root := filepath.Join(deployDir(t), "k8s")
	var yamlFiles []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			yamlFiles = append(yamlFiles, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	resources, patches := map[string]bool{}, map[string]bool{}
	for _, p := range yamlFiles {
		if filepath.Base(p) != "kustomization.yaml" {
			continue
		}
		var k kusttypes.Kustomization
		if err := strictUnmarshal(readFile(t, p), &k); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if k.Kind != "Kustomization" || k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
			t.Errorf("%s: apiVersion/kind %q/%q", p, k.APIVersion, k.Kind)
		}
		dir := filepath.Dir(p)
		for _, r := range k.Resources {
			resources[filepath.Join(dir, r)] = true
		}
		for _, pt := range k.Patches {
			if pt.Path == "" {
				t.Errorf("%s: inline patch; keep patches in files", p)
				continue
			}
			patches[filepath.Join(dir, pt.Path)] = true
		}
		//lint:ignore SA1019 refusing the deprecated fields is the point
		if len(k.PatchesStrategicMerge)+len(k.PatchesJson6902) > 0 {
			t.Errorf("%s: deprecated patch fields; use patches", p)
		}
	}
	for _, p := range yamlFiles {
		rel, _ := filepath.Rel(root, p)
		switch {
		case filepath.Base(p) == "kustomization.yaml":
		case patches[p]:
			var ops []jsonPatchOp
			if err := strictUnmarshal(readFile(t, p), &ops); err != nil {
				t.Errorf("%s: not a JSON patch: %v", rel, err)
			}
			for _, op := range ops {
				if !slices.Contains([]string{"add", "remove", "replace", "move", "copy", "test"}, op.Op) || !strings.HasPrefix(op.Path, "/") {
					t.Errorf("%s: bad operation %+v", rel, op)
				}
			}
		case resources[p]:
			docs, err := yamlDocs(readFile(t, p))
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				continue
			}
			if len(docs) == 0 {
				t.Errorf("%s: no objects", rel)
			}
			for _, doc := range docs {
				if _, err := decodeStrict(rel, doc); err != nil {
					t.Error(err)
				}
			}
		default:
			t.Errorf("%s: no kustomization refers to it", rel)
		}
	}
}

// TestStrictDecodingRejectsUnknownFields proves the decoding above would
// catch a misspelt or misplaced field.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	for name, field := range map[string]string{
		"wrong case": "readinessprobe: {grpc: {port: 1}}",
		"unknown":    "readinessProbes: {grpc: {port: 1}}",
		"misplaced":  "readinessProbe: {port: 1}",
		"duplicate":  "image: x:2",
	} {
		doc := []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          image: x:1
          ` + field + "\n")
		if _, err := decodeStrict("inline", doc); err == nil {
			t.Errorf("%s field decoded without error", name)
		}
	}
}

// kustomizations are the directories kubectl apply -k may be given.
var kustomizations = []string{"base", "eventstore", "overlays/example", "overlays/kurrentdb", "overlays/tls"}

// build runs kustomize on one directory and decodes its output strictly.
func build(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(deployDir(t), "k8s", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		o, err := decodeStrict(dir, b)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestKustomizations builds every kustomization and checks what it would
// apply: hardened pods, private admin and metrics ports, references that
// resolve.
func TestKustomizations(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			objs := build(t, dir)
			for _, o := range objs {
				switch v := o.obj.(type) {
				case *appsv1.Deployment:
					checkPod(t, "Deployment "+o.name, v.Spec.Template.Spec)
					if grpcPort[o.name] != 0 {
						checkCartDeployment(t, v, objs)
					}
				case *appsv1.StatefulSet:
					checkPod(t, "StatefulSet "+o.name, v.Spec.Template.Spec)
				case *corev1.Service:
					checkService(t, v)
				}
			}
			if strings.HasPrefix(dir, "overlays/") {
				checkReferences(t, objs, true)
			} else {
				checkReferences(t, objs, false)
			}
		})
	}
}

// checkPod asserts the hardening every pod here keeps.
func checkPod(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", what)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: host namespaces", what)
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Errorf("%s: pod runAsUser 0", what)
	}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		t.Errorf("%s: no containers", what)
	}
	for _, c := range containers {
		what := what + " container " + c.Name
		if floatingImage(c.Image) {
			t.Errorf("%s: image %q has no tag, or :latest", what, c.Image)
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", what)
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot must be true", what)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runAsUser 0", what)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", what)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", what)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", what)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", what)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: seccompProfile must be RuntimeDefault", what)
		}
		for _, r := range []struct {
			list corev1.ResourceList
			name corev1.ResourceName
			kind string
		}{
			{c.Resources.Requests, corev1.ResourceCPU, "requests"},
			{c.Resources.Requests, corev1.ResourceMemory, "requests"},
			{c.Resources.Limits, corev1.ResourceMemory, "limits"},
		} {
			if q, ok := r.list[r.name]; !ok || q.IsZero() {
				t.Errorf("%s: no resources.%s.%s", what, r.kind, r.name)
			}
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: readiness and liveness probes are required", what)
		}
	}
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// podEnv is the environment container c of the Deployment for service
// sees: its image's ENV (the Dockerfile target of the same name), then
// c.env, with values from the Secrets and ConfigMaps in objs. resolved is
// false when a reference is not in objs (base has no Secrets); the variable
// then holds a placeholder.
func podEnv(t *testing.T, service string, c corev1.Container, objs []object) (env map[string]string, resolved bool) {
	t.Helper()
	data := map[string]map[string]string{} // "Secret/name" -> key -> value
	for _, o := range objs {
		kv := map[string]string{}
		switch v := o.obj.(type) {
		case *corev1.Secret:
			for k, b := range v.Data {
				kv[k] = string(b)
			}
			maps.Copy(kv, v.StringData)
		case *corev1.ConfigMap:
			maps.Copy(kv, v.Data)
		default:
			continue
		}
		data[o.kind+"/"+o.name] = kv
	}
	env, resolved = imageEnv(t, service), true
	for _, e := range c.Env {
		var val string
		var ok bool
		switch {
		case e.ValueFrom == nil:
			val, ok = e.Value, true
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			val, ok = data["Secret/"+r.Name][r.Key]
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			val, ok = data["ConfigMap/"+r.Name][r.Key]
		default: // fieldRef, resourceFieldRef: not the services' settings
			val, ok = "from-the-pod", true
		}
		if !ok {
			val, resolved = "unresolved", false
		}
		env[e.Name] = val
	}
	return env, resolved
}

// checkCartDeployment asserts what command-svc and query-svc need beyond
// checkPod: the contract's variable names, probes on the health service,
// GOMEMLIMIT under the limit, a configuration the service accepts (in the
// overlays, where the Secrets are), reflection off, a preStop sleep and a
// grace period that covers it, the drain and the shutdown, spread,
// a disruption budget, a private ServiceAccount, fenced private ports.
func checkCartDeployment(t *testing.T, d *appsv1.Deployment, objs []object) {
	t.Helper()
	what := "Deployment " + d.Name
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	for _, e := range c.Env {
		if !allowedEnv(d.Name, e.Name) {
			t.Errorf("%s: %s is not a %s setting", what, e.Name, d.Name)
		}
	}
	wantListen := fmt.Sprintf("0.0.0.0:%d", grpcPort[d.Name])
	listenVar := map[string]string{"command-svc": "CART_COMMAND_LISTEN", "query-svc": "CART_QUERY_LISTEN"}[d.Name]
	if v, _ := envValue(c, listenVar); v != wantListen {
		t.Errorf("%s: %s = %q, want %q", what, listenVar, v, wantListen)
	}
	if v, _ := envValue(c, "CART_METRICS_LISTEN"); v != fmt.Sprintf("0.0.0.0:%d", metricsPort) {
		t.Errorf("%s: CART_METRICS_LISTEN = %q", what, v)
	}

	// Readiness asks the gRPC health service: natively, or through
	// grpc_health_probe when the port speaks TLS (kubelet's probe cannot).
	rp := c.ReadinessProbe
	switch {
	case rp == nil:
	case rp.GRPC != nil:
		if rp.GRPC.Port != grpcPort[d.Name] {
			t.Errorf("%s: readiness probes port %d", what, rp.GRPC.Port)
		}
		if _, tls := envValue(c, "CART_TLS_CERT"); tls {
			t.Errorf("%s: native grpc probe on a TLS port", what)
		}
	case rp.Exec != nil:
		cmd := strings.Join(rp.Exec.Command, " ")
		if !strings.HasPrefix(cmd, "/bin/grpc_health_probe ") || !strings.Contains(cmd, fmt.Sprintf(":%d", grpcPort[d.Name])) {
			t.Errorf("%s: readiness exec %q is not grpc_health_probe on the gRPC port", what, cmd)
		}
		if _, tls := envValue(c, "CART_TLS_CERT"); tls && !slices.Contains(rp.Exec.Command, "-tls") {
			t.Errorf("%s: readiness probe without -tls on a TLS port", what)
		}
	default:
		t.Errorf("%s: readiness probe must ask the gRPC health service", what)
	}
	if c.LivenessProbe != nil && c.LivenessProbe.TCPSocket == nil && c.LivenessProbe.GRPC == nil {
		t.Errorf("%s: liveness probe must be TCP or gRPC", what)
	}

	// GOMEMLIMIT: 80-95% of limits.memory.
	limit := c.Resources.Limits[corev1.ResourceMemory]
	gml, ok := envValue(c, "GOMEMLIMIT")
	if !ok {
		t.Errorf("%s: no GOMEMLIMIT", what)
	} else {
		q, err := resource.ParseQuantity(strings.TrimSuffix(gml, "B"))
		if err != nil {
			t.Errorf("%s: GOMEMLIMIT %q: %v", what, gml, err)
		} else if r := float64(q.Value()) / float64(limit.Value()); r < 0.8 || r > 0.95 {
			t.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the %s limit, want 80-95%%", what, gml, r*100, limit.String())
		}
	}

	// The configuration as the service parses it (image ENV, then the
	// container's env with Secrets and ConfigMaps of the same output).
	env, resolved := podEnv(t, d.Name, c, objs)
	cfg, err := parseService(d.Name, c.Args, func(k string) string { return env[k] })
	if err != nil && resolved {
		t.Errorf("%s would refuse to start: %v", what, err)
	}

	// Production serves no reflection (health stays open regardless).
	if cfg.Server.Security.Reflection {
		t.Errorf("%s: server reflection is on; set CART_REFLECTION=false", what)
	}
	if cfg.Server.Security.InsecureNoAuth {
		t.Errorf("%s: CART_INSECURE_NO_AUTH", what)
	}

	// preStop sleeps (the kubelet's sleep action: the image has no shell)
	// while endpoints propagate; then SIGTERM, the drain and the graceful
	// stop. The kubelet's SIGKILL must come after all of it, with margin.
	drain, _ := envValue(c, "CART_DRAIN")
	shutdown, _ := envValue(c, "CART_SHUTDOWN_TIMEOUT")
	if drain == "" || shutdown == "" {
		t.Errorf("%s: CART_DRAIN and CART_SHUTDOWN_TIMEOUT must be set", what)
	}
	var preStop time.Duration
	switch h := c.Lifecycle; {
	case h == nil || h.PreStop == nil || h.PreStop.Sleep == nil:
		t.Errorf("%s: no lifecycle.preStop.sleep", what)
	case h.PreStop.Exec != nil || h.PreStop.HTTPGet != nil || h.PreStop.TCPSocket != nil:
		t.Errorf("%s: preStop must be the sleep action alone (the image has no shell)", what)
	case h.PreStop.Sleep.Seconds < 1:
		t.Errorf("%s: preStop sleep %ds", what, h.PreStop.Sleep.Seconds)
	default:
		preStop = time.Duration(h.PreStop.Sleep.Seconds) * time.Second
	}
	grace := int64(30)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	need := preStop + cfg.Server.Drain + cfg.Server.ShutdownTimeout + 5*time.Second
	if time.Duration(grace)*time.Second < need {
		t.Errorf("%s: terminationGracePeriodSeconds %d does not cover preStop %s + drain %s + shutdown %s + 5s",
			what, grace, preStop, cfg.Server.Drain, cfg.Server.ShutdownTimeout)
	}

	if len(spec.TopologySpreadConstraints) == 0 {
		t.Errorf("%s: no topologySpreadConstraints", what)
	}
	podLabels := d.Spec.Template.Labels
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.LabelSelector == nil || !selects(tsc.LabelSelector.MatchLabels, podLabels) {
			t.Errorf("%s: topology spread on %s does not select its pods", what, tsc.TopologyKey)
		}
	}
	if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("%s: selector does not match its template", what)
	}

	// Ports by name; the container declares its private ones.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != grpcPort[d.Name] || ports["metrics"] != metricsPort {
		t.Errorf("%s: ports %v", what, ports)
	}
	if d.Name == "query-svc" && ports["admin"] != adminPort {
		t.Errorf("%s: admin port %v", what, ports)
	}

	var pdb, sa, netpol bool
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *policyv1.PodDisruptionBudget:
			if v.Spec.Selector != nil && selects(v.Spec.Selector.MatchLabels, podLabels) {
				pdb = true
			}
		case *corev1.ServiceAccount:
			if v.Name == spec.ServiceAccountName {
				sa = true
				if v.AutomountServiceAccountToken == nil || *v.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", v.Name)
				}
			}
		case *networkingv1.NetworkPolicy:
			if selects(v.Spec.PodSelector.MatchLabels, podLabels) {
				netpol = true
				checkNetworkPolicy(t, v)
			}
		}
	}
	if !pdb {
		t.Errorf("%s: no PodDisruptionBudget selects its pods", what)
	}
	if spec.ServiceAccountName == "" || !sa {
		t.Errorf("%s: ServiceAccount %q not in the manifests", what, spec.ServiceAccountName)
	}
	if !netpol {
		t.Errorf("%s: no NetworkPolicy selects its pods", what)
	}
}

// selects reports whether a matchLabels selector (non-empty) selects labels.
func selects(sel, labels map[string]string) bool {
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

// checkNetworkPolicy asserts that no ingress rule opens the admin or metrics
// port to everyone: such a rule must name its peers, metrics may come from
// the monitoring namespace, admin only from labelled pods of this one.
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy) {
	t.Helper()
	what := "NetworkPolicy " + np.Name
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("%s: policyTypes lacks Ingress", what)
	}
	for i, rule := range np.Spec.Ingress {
		covers := func(port int32) bool {
			if len(rule.Ports) == 0 {
				return true
			}
			for _, p := range rule.Ports {
				if p.Port == nil || (p.Port.Type == intstr.Int && p.Port.IntVal == port) ||
					(p.Port.Type == intstr.String && p.Port.StrVal == map[int32]string{adminPort: "admin", metricsPort: "metrics"}[port]) {
					return true
				}
			}
			return false
		}
		for _, port := range []int32{adminPort, metricsPort} {
			if !covers(port) {
				continue
			}
			if len(rule.From) == 0 {
				t.Errorf("%s: ingress rule %d opens port %d to everyone", what, i, port)
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					t.Errorf("%s: ingress rule %d opens port %d to an IP block", what, i, port)
				case peer.NamespaceSelector != nil:
					if port == adminPort {
						t.Errorf("%s: ingress rule %d opens the admin port to another namespace", what, i)
					}
					if peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || peer.PodSelector != nil {
						t.Errorf("%s: ingress rule %d: metrics only from the monitoring namespace", what, i)
					}
				case peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) == 0:
					t.Errorf("%s: ingress rule %d opens port %d to every pod", what, i, port)
				}
			}
		}
	}
}

// checkService asserts that no Service publishes the admin or metrics
// port, and that none leaves the cluster.
func checkService(t *testing.T, s *corev1.Service) {
	t.Helper()
	if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service %s: type %s; cart is reached through the cluster's ingress", s.Name, s.Spec.Type)
	}
	for _, p := range s.Spec.Ports {
		tp := p.TargetPort
		if p.Port == adminPort || p.Port == metricsPort ||
			(tp.Type == intstr.Int && (tp.IntVal == adminPort || tp.IntVal == metricsPort)) ||
			(tp.Type == intstr.String && (tp.StrVal == "admin" || tp.StrVal == "metrics")) {
			t.Errorf("Service %s: exposes private port %s", s.Name, p.Name)
		}
	}
}

// checkReferences asserts that the Secrets, ConfigMaps and keys the pods
// refer to are in the same output. The base brings no Secrets (every
// environment has its own), so there only ConfigMaps are checked.
func checkReferences(t *testing.T, objs []object, secrets bool) {
	t.Helper()
	data := map[string]map[string]bool{} // "Secret/name" -> keys
	for _, o := range objs {
		keys := map[string]bool{}
		switch v := o.obj.(type) {
		case *corev1.Secret:
			for k := range v.Data {
				keys[k] = true
			}
			for k := range v.StringData {
				keys[k] = true
			}
		case *corev1.ConfigMap:
			for k := range v.Data {
				keys[k] = true
			}
		default:
			continue
		}
		data[o.kind+"/"+o.name] = keys
	}
	ref := func(what, kind, name, key string) {
		if kind == "Secret" && !secrets {
			return
		}
		keys, ok := data[kind+"/"+name]
		switch {
		case !ok:
			t.Errorf("%s: %s %s is not in the manifests", what, kind, name)
		case key != "" && !keys[key]:
			t.Errorf("%s: %s %s has no key %q", what, kind, name, key)
		}
	}
	for _, o := range objs {
		var spec corev1.PodSpec
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			spec = v.Spec.Template.Spec
		case *appsv1.StatefulSet:
			spec = v.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range spec.Containers {
			what := o.kind + " " + o.name + " container " + c.Name
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					ref(what+" env "+e.Name, "Secret", r.Name, r.Key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					ref(what+" env "+e.Name, "ConfigMap", r.Name, r.Key)
				}
			}
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				ref(o.kind+" "+o.name+" volume "+v.Name, "Secret", v.Secret.SecretName, "")
			}
			if v.ConfigMap != nil {
				ref(o.kind+" "+o.name+" volume "+v.Name, "ConfigMap", v.ConfigMap.Name, "")
			}
		}
	}
}

// TestKurrentDBOverlay checks the swap: KurrentDB's image, only KURRENTDB_*
// settings, and its data path on the data volume.
func TestKurrentDBOverlay(t *testing.T) {
	for _, tc := range []struct {
		dir, image, dataPath, prefix string
	}{
		{"overlays/example", "eventstore/eventstore:", "/var/lib/eventstore", "EVENTSTORE_"},
		{"overlays/kurrentdb", "docker.kurrent.io/kurrent-latest/kurrentdb:", "/var/lib/kurrentdb", "KURRENTDB_"},
	} {
		t.Run(strings.ReplaceAll(tc.dir, "/", "_"), func(t *testing.T) {
			var found bool
			for _, o := range build(t, tc.dir) {
				ss, ok := o.obj.(*appsv1.StatefulSet)
				if !ok || ss.Name != "eventstore" {
					continue
				}
				found = true
				c := ss.Spec.Template.Spec.Containers[0]
				if !strings.HasPrefix(c.Image, tc.image) {
					t.Errorf("image %q, want %s...", c.Image, tc.image)
				}
				for _, e := range c.Env {
					if !strings.HasPrefix(e.Name, tc.prefix) {
						t.Errorf("env %s: want only %s* settings", e.Name, tc.prefix)
					}
				}
				if v, _ := envValue(c, tc.prefix+"DB"); v != tc.dataPath {
					t.Errorf("%sDB = %q, want %s", tc.prefix, v, tc.dataPath)
				}
				var mounted bool
				for _, m := range c.VolumeMounts {
					if m.Name == "data" && m.MountPath == tc.dataPath {
						mounted = true
					}
				}
				if !mounted {
					t.Errorf("data volume not mounted at %s: %+v", tc.dataPath, c.VolumeMounts)
				}
			}
			if !found {
				t.Fatal("no eventstore StatefulSet")
			}
		})
	}
}

// TestExampleSecretsAreMarked keeps example Secrets recognisable as such.
func TestExampleSecretsAreMarked(t *testing.T) {
	err := filepath.WalkDir(filepath.Join(deployDir(t), "k8s"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("kind: Secret")) {
			if !strings.HasSuffix(p, ".example.yaml") || !bytes.Contains(b, []byte("EXAMPLE")) {
				t.Errorf("%s: a Secret outside a *.example.yaml file marked EXAMPLE", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
