package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

const module = "github.com/kappa-lake/kappa"

// pkg is the part of `go list -json` output the rules need.
type pkg struct {
	ImportPath string
	Name       string
	Imports    []string // direct imports of the non-test files
	Deps       []string // transitive dependencies of the non-test files
}

// listPackages runs `go list` over the whole module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e", "-json=ImportPath,Name,Imports,Deps", "./...")
	cmd.Dir = testutil.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

func isLibrary(p pkg) bool {
	return p.Name != "main" && !strings.HasPrefix(p.ImportPath, module+"/cmd/")
}

func TestNoLogPackageInLibraries(t *testing.T) {
	for _, p := range listPackages(t) {
		if isLibrary(p) && slices.Contains(p.Imports, "log") {
			t.Errorf("%s imports \"log\": library code takes a *slog.Logger instead", p.ImportPath)
		}
	}
}

func TestTxlogStaysFormatOnly(t *testing.T) {
	banned := []string{module + "/table", module + "/reader", module + "/ingest"}
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/txlog" && !strings.HasPrefix(p.ImportPath, module+"/txlog/") {
			continue
		}
		for _, d := range p.Deps {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s depends on %s: txlog is the log format only", p.ImportPath, d)
				}
			}
		}
	}
}

func TestLibrariesDoNotImportCmd(t *testing.T) {
	for _, p := range listPackages(t) {
		if !isLibrary(p) {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/cmd/") {
				t.Errorf("%s imports %s: library code must not depend on commands", p.ImportPath, imp)
			}
		}
	}
}
