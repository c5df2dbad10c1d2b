package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// TestREADMEShowsExample checks that README.md shows the example function of
// example_test.go verbatim (between the README markers), so the README's
// library example is code that compiles and whose output is tested.
func TestREADMEShowsExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "// README:begin\n")
	if !ok {
		t.Fatal("example_test.go has no // README:begin marker")
	}
	snippet, _, ok := strings.Cut(rest, "// README:end")
	if !ok {
		t.Fatal("example_test.go has no // README:end marker")
	}
	snippet = strings.TrimSpace(snippet)
	readme, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// README code blocks are indented with tabs like the source.
	if !strings.Contains(string(readme), snippet) {
		t.Errorf("README.md does not contain the example function of internal/readme/example_test.go verbatim; copy it:\n%s", snippet)
	}
}
