package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

// dockerfile reads deploy/Dockerfile into instructions. It handles what
// the file uses: comments, backslash continuations; no heredocs.
func dockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, deployDir(t), "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
		cur.WriteString(" ")
		if cont {
			continue
		}
		if s := strings.TrimSpace(cur.String()); s != "" {
			cmd, args, _ := strings.Cut(s, " ")
			out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		}
		cur.Reset()
	}
	return out
}

// stage is one FROM ... AS name section.
type stage struct {
	name, from string
	body       []instruction
}

func dockerfileStageList(t *testing.T) (args map[string]string, stages []stage) {
	t.Helper()
	args = map[string]string{}
	for _, in := range dockerfile(t) {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

// stageLineage is everything the stage name is built of: its instructions
// after those of the stages it is FROM.
func stageLineage(t *testing.T, name string) []instruction {
	t.Helper()
	_, stages := dockerfileStageList(t)
	byName := map[string]stage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	var body []instruction
	for s, ok := byName[name]; ok; s, ok = byName[s.from] {
		body = append(slices.Clone(s.body), body...)
	}
	return body
}

func dockerfileStages(t *testing.T) []string {
	_, stages := dockerfileStageList(t)
	var names []string
	for _, s := range stages {
		names = append(names, s.name)
	}
	return names
}

var pinnedImage = regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

// TestDockerfile checks the image build: bases pinned by tag and digest,
// one target per service with its ports, labels, a numeric non-root user,
// exec-form entrypoints, a pinned grpc_health_probe.
func TestDockerfile(t *testing.T) {
	args, stages := dockerfileStageList(t)
	byName := map[string]stage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	for _, s := range stages {
		if _, ok := byName[s.from]; ok {
			continue // FROM an earlier stage
		}
		ref := s.from
		if strings.HasPrefix(ref, "${") && strings.HasSuffix(ref, "}") {
			ref = args[strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")]
		}
		if !pinnedImage.MatchString(ref) {
			t.Errorf("stage %s: base %q (%s) is not pinned as image:tag@sha256:<digest>", s.name, s.from, ref)
		}
	}

	for svc, ports := range map[string][]int32{
		"command-svc": {grpcPort["command-svc"], metricsPort},
		"query-svc":   {grpcPort["query-svc"], adminPort, metricsPort},
	} {
		if _, ok := byName[svc]; !ok {
			t.Errorf("no %s target", svc)
			continue
		}
		var expose, labels, user, entrypoint string
		var probe bool
		for _, in := range stageLineage(t, svc) {
			switch in.cmd {
			case "EXPOSE":
				expose += " " + in.args
			case "LABEL":
				labels += " " + in.args
			case "USER":
				user = in.args
			case "ENTRYPOINT":
				entrypoint = in.args
			case "COPY":
				probe = probe || strings.HasSuffix(in.args, " /bin/grpc_health_probe")
			}
		}
		for _, p := range ports {
			if !slices.Contains(strings.Fields(expose), fmt.Sprint(p)) {
				t.Errorf("%s: does not EXPOSE %d", svc, p)
			}
		}
		for _, l := range []string{"title", "description", "source", "version", "revision", "created", "licenses"} {
			if !strings.Contains(labels, "org.opencontainers.image."+l+"=") {
				t.Errorf("%s: no org.opencontainers.image.%s label", svc, l)
			}
		}
		if !regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`).MatchString(user) {
			t.Errorf("%s: USER %q, want a numeric non-root uid:gid", svc, user)
		}
		if entrypoint != fmt.Sprintf(`["/%s"]`, svc) {
			t.Errorf("%s: ENTRYPOINT %s, want the exec form [\"/%s\"]", svc, entrypoint, svc)
		}
		if !probe {
			t.Errorf("%s: no /bin/grpc_health_probe (the compose healthchecks run it)", svc)
		}
	}
	// The dev tool's image (compose's carttoken): the same non-root user
	// as the services, which read the 0700 key directory it creates.
	var devUser, devEntry string
	for _, in := range stageLineage(t, "carttoken") {
		switch in.cmd {
		case "USER":
			devUser = in.args
		case "ENTRYPOINT":
			devEntry = in.args
		}
	}
	for _, svc := range []string{"command-svc", "query-svc"} {
		for _, in := range stageLineage(t, svc) {
			if in.cmd == "USER" && in.args != devUser {
				t.Errorf("carttoken: USER %q, but %s runs as %q", devUser, svc, in.args)
			}
		}
	}
	if devEntry != `["/carttoken"]` {
		t.Errorf("carttoken: ENTRYPOINT %s", devEntry)
	}
	if last := stages[len(stages)-1].name; last != "query-svc" && last != "command-svc" {
		t.Errorf("the last stage (a build without --target) is %s, want a service", last)
	}

	var probeVersion string
	for _, in := range byName["build"].body {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GRPC_HEALTH_PROBE_VERSION=") {
			probeVersion = strings.TrimPrefix(in.args, "GRPC_HEALTH_PROBE_VERSION=")
		}
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(probeVersion) {
		t.Errorf("grpc-health-probe version %q is not pinned", probeVersion)
	}
}

// TestDockerignore keeps the build context to what the build needs.
func TestDockerignore(t *testing.T) {
	var lines []string
	for _, l := range strings.Split(string(readFile(t, deployDir(t), "..", ".dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for _, must := range []string{".git", "bin", "deploy", ".data"} {
		if !slices.Contains(lines, must) {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
	for _, l := range lines {
		for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "proto"} {
			if strings.TrimPrefix(l, "/") == need {
				t.Errorf(".dockerignore excludes %s, which the build needs", need)
			}
		}
	}
}
