package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/acme/cart"

// pkg is what `go list -json` says of a package that the rules need.
type pkg struct {
	ImportPath string
	Imports    []string // direct imports of the non-test files
	Deps       []string // every package it links, transitively
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,Imports,Deps"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// tooling says whether a package is dev tooling or a test kit rather than
// product.
func tooling(path string) bool {
	for _, prefix := range []string{module + "/internal/dev/", module + "/internal/testing/", module + "/cmd/dev/"} {
		if strings.HasPrefix(path+"/", prefix) {
			return true
		}
	}
	return false
}

func matching(deps []string, prefixes ...string) []string {
	var bad []string
	for _, d := range deps {
		for _, p := range prefixes {
			if d == p || strings.HasPrefix(d, p+"/") {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

func TestProductNeverLinksToolingOrTestKits(t *testing.T) {
	t.Parallel()
	product := 0
	for _, p := range list(t, "./...") {
		if tooling(p.ImportPath) {
			continue
		}
		product++
		if bad := matching(p.Deps, module+"/internal/dev", module+"/internal/testing", module+"/cmd"); len(bad) > 0 {
			t.Errorf("product package %s links %v", p.ImportPath, bad)
		}
	}
	if product < 10 {
		t.Fatalf("only %d product packages found; is the module path %s?", product, module)
	}
}

func TestEachStoreClientHasOneProductImporter(t *testing.T) {
	t.Parallel()
	owners := map[string]string{
		"github.com/EventStore/EventStore-Client-Go": module + "/internal/eventstore",
		"go.mongodb.org/mongo-driver":                module + "/internal/readmodel",
	}
	for _, p := range list(t, "./...") {
		if tooling(p.ImportPath) {
			continue
		}
		for client, owner := range owners {
			if p.ImportPath != owner && len(matching(p.Imports, client)) > 0 {
				t.Errorf("%s imports %s; only %s may", p.ImportPath, client, owner)
			}
		}
	}
}

func TestEachServiceLinksOnlyItsOwnSide(t *testing.T) {
	t.Parallel()
	never := []string{
		module + "/internal/dev", module + "/internal/testing",
		"github.com/FerretDB", "github.com/testcontainers",
	}
	rules := []struct {
		cmd       string
		forbidden []string
		required  []string
	}{
		{
			cmd: "./cmd/command-svc",
			forbidden: append([]string{
				"go.mongodb.org/mongo-driver",
				module + "/internal/projection", module + "/internal/readside", module + "/internal/readmodel",
				module + "/internal/query", module + "/internal/admin",
				module + "/internal/api/queryapi", module + "/internal/api/adminapi", module + "/internal/querysvc",
			}, never...),
			required: []string{module + "/internal/command", module + "/internal/eventstore"},
		},
		{
			cmd: "./cmd/query-svc",
			forbidden: append([]string{
				module + "/internal/command", module + "/internal/api/commandapi", module + "/internal/commandsvc",
			}, never...),
			required: []string{module + "/internal/projection", module + "/internal/readmodel"},
		},
	}
	for _, r := range rules {
		t.Run(strings.TrimPrefix(r.cmd, "./cmd/"), func(t *testing.T) {
			t.Parallel()
			p := list(t, r.cmd)[0]
			if bad := matching(p.Deps, r.forbidden...); len(bad) > 0 {
				t.Errorf("%s links %v", r.cmd, bad)
			}
			for _, req := range r.required {
				if !slices.Contains(p.Deps, req) {
					t.Errorf("%s does not link %s: is the rule still looking at the right binary?", r.cmd, req)
				}
			}
		})
	}
}
