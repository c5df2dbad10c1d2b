// Package testutil holds helpers shared by the project's tests: locating the
// shared fixture tables, starting real servers on loopback, temp copies.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireFixturesEnv names the environment variable that, when set to 1 (as
// .ci/run does), turns a missing ../shared/testdata into a test failure
// instead of a skip, so CI can never pass by skipping fixture tests.
const RequireFixturesEnv = "KAPPA_REQUIRE_FIXTURES"

// RepoRoot returns the project root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Testdata returns the absolute path of ../shared/testdata/<elem...>, skipping
// the test with a clear message when the shared folder is absent (a user's
// clone), or failing it when KAPPA_REQUIRE_FIXTURES=1.
func Testdata(tb testing.TB, elem ...string) string {
	tb.Helper()
	root := os.Getenv("KAPPA_TESTDATA")
	if root == "" {
		root = filepath.Join(RepoRoot(), "..", "shared", "testdata")
	}
	if _, err := os.Stat(root); err != nil {
		msg := "fixture tables not found at " + root + " (../shared/testdata beside the repo, or set KAPPA_TESTDATA)"
		if os.Getenv(RequireFixturesEnv) == "1" {
			tb.Fatalf("%s; %s=1 requires them", msg, RequireFixturesEnv)
		}
		tb.Skip(msg)
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("fixture %s: %v", p, err)
	}
	return p
}

// CopyDir copies the directory tree src into a new temp dir and returns it.
// Use it for fixtures a test must modify (e.g. to set commit mtimes).
func CopyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		tb.Fatalf("copy %s: %v", src, err)
	}
	return dst
}
