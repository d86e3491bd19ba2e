package realstores

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// skipReason starts every skip for want of an engine, so that a reader of
// the test output knows at once why nothing ran.
const skipReason = "no Docker engine reachable (DOCKER_HOST / /var/run/docker.sock)"

// dialTimeout bounds the cheap first check. A local socket either answers at
// once or not at all; only a remote DOCKER_HOST could need longer.
const dialTimeout = time.Second

// providerTimeout bounds the second check, through testcontainers-go
// itself, of an endpoint that accepted a connection: a healthy engine
// answers in milliseconds, and a wedged one must not hang the test run.
const providerTimeout = 10 * time.Second

// The engine is looked for once per test binary: every test asks, and the
// answer does not change while the binary runs.
var (
	engineOnce sync.Once
	engineErr  error // nil: an engine answered
)

// requireEngine skips tb when -short is set or no Docker engine answers;
// image names what would have run, for the skip message. It never fails:
// a missing engine is a property of the machine, not a defect.
func requireEngine(tb testing.TB, image string) {
	tb.Helper()
	gate(tb, image, testing.Short(), checkEngine)
}

// checkEngine looks for the engine once per test binary.
func checkEngine() error {
	engineOnce.Do(func() {
		engineErr = findEngine(osHost())
		if engineErr == nil {
			engineErr = askTestcontainers(providerTimeout)
		}
	})
	return engineErr
}

// gate is requireEngine with its inputs passed in, for tests: under -short
// it skips without looking for an engine at all.
func gate(tb testing.TB, image string, short bool, check func() error) {
	tb.Helper()
	if short {
		tb.Skipf("-short: skipping tests against the real %s image (they start a container)", image)
	}
	if err := check(); err != nil {
		tb.Skipf("%s: skipping tests against the real %s image: %v", skipReason, image, err)
	}
}

// host is what the engine search looks at, so that tests can stage it.
type host struct {
	getenv        func(string) string
	home          string // the user's home directory; "" if unknown
	uid           int
	defaultSocket string // /var/run/docker.sock; "" on Windows
	pipe          string // Windows: the engine's named pipe, not checked here
	runDir        string // /run, parent of the rootless /run/user/<uid>
}

func osHost() host {
	home, _ := os.UserHomeDir()
	h := host{
		getenv:        os.Getenv,
		home:          home,
		uid:           os.Getuid(),
		defaultSocket: "/var/run/docker.sock",
		runDir:        "/run",
	}
	if runtime.GOOS == "windows" {
		h.defaultSocket, h.pipe = "", client.DefaultDockerHost
	}
	return h
}

// endpoints lists where an engine may listen, in the order testcontainers-go
// v0.45.0 tries them (internal/core/docker_host.go): tc.host from
// ~/.testcontainers.properties, DOCKER_HOST, the default socket (the named
// pipe on Windows), docker.host from the properties, then the rootless
// sockets ($XDG_RUNTIME_DIR, ~/.docker/run, ~/.docker/desktop,
// /run/user/<uid>). Sockets are listed only if the file exists, as
// testcontainers-go does.
func endpoints(h host) []string {
	props := map[string]string{}
	if h.home != "" {
		props = readProperties(filepath.Join(h.home, ".testcontainers.properties"))
	}
	var out []string
	add := func(ep string) {
		if ep == "" {
			return
		}
		for _, seen := range out {
			if seen == ep {
				return
			}
		}
		out = append(out, ep)
	}
	addSocket := func(path string) {
		if path == "" {
			return
		}
		if _, err := os.Stat(path); err == nil {
			add("unix://" + path)
		}
	}
	add(props["tc.host"])
	add(h.getenv("DOCKER_HOST"))
	addSocket(h.defaultSocket)
	add(h.pipe)
	add(props["docker.host"])
	if xdg := h.getenv("XDG_RUNTIME_DIR"); xdg != "" {
		addSocket(filepath.Join(xdg, "docker.sock"))
	}
	if h.home != "" {
		addSocket(filepath.Join(h.home, ".docker", "run", "docker.sock"))
		addSocket(filepath.Join(h.home, ".docker", "desktop", "docker.sock"))
	}
	addSocket(filepath.Join(h.runDir, "user", strconv.Itoa(h.uid), "docker.sock"))
	return out
}

// readProperties reads the key=value (or key: value) lines of a Java
// properties file, which is all ~/.testcontainers.properties holds in
// practice; a missing file has no properties.
func readProperties(path string) map[string]string {
	props := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return props
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return props
}

// reach dials endpoint. Endpoints that cannot be dialled cheaply (npipe://,
// ssh://) count as reachable: the bounded check through testcontainers-go
// decides for them.
func reach(endpoint string, timeout time.Duration) error {
	network, addr := "", ""
	if strings.HasPrefix(endpoint, "/") {
		network, addr = "unix", endpoint
	} else {
		u, err := url.Parse(endpoint)
		if err != nil {
			return fmt.Errorf("%s: %w", endpoint, err)
		}
		switch u.Scheme {
		case "unix":
			network, addr = "unix", u.Path
		case "tcp":
			network, addr = "tcp", u.Host
		default:
			return nil
		}
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return fmt.Errorf("%s: %w", endpoint, err)
	}
	return c.Close()
}

// findEngine is the cheap check: is there an endpoint and does anything
// accept a connection there?
func findEngine(h host) error {
	eps := endpoints(h)
	if len(eps) == 0 {
		return errors.New("DOCKER_HOST is not set and no Docker socket exists " +
			"(/var/run/docker.sock, $XDG_RUNTIME_DIR/docker.sock, ~/.docker/run/docker.sock, " +
			"~/.docker/desktop/docker.sock, /run/user/<uid>/docker.sock, tc.host or docker.host in ~/.testcontainers.properties)")
	}
	var errs []error
	for _, ep := range eps {
		err := reach(ep, dialTimeout)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("nothing accepts connections there: %w", errors.Join(errs...))
}

// askTestcontainers checks, once something listens, that testcontainers-go
// finds and pings the engine, within timeout and without letting one of its
// panics (it panics on some discovery failures) end the test binary.
func askTestcontainers(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("testcontainers-go panicked looking for the engine: %v", r)
			}
		}()
		cli, err := testcontainers.NewDockerClientWithOpts(ctx)
		if err != nil {
			done <- fmt.Errorf("testcontainers-go docker client: %w", err)
			return
		}
		defer cli.Close()
		if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
			done <- fmt.Errorf("ping the engine at %s: %w", cli.DaemonHost(), err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the engine did not answer testcontainers-go within %s", timeout)
	}
}
