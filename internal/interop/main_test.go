//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// kappaBin is the kappa binary built once for the whole run.
var kappaBin string

type summaryRow struct {
	Case, Engine, Versions, Result string
}

var (
	summaryMu sync.Mutex
	summary   []summaryRow
)

// record adds a row to the summary table printed at the end of the run.
func record(c, engine, versions, result string) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	summary = append(summary, summaryRow{c, engine, versions, result})
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kappa-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	kappaBin = filepath.Join(dir, "kappa")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", kappaBin, "./cmd/kappa")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: build kappa: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	printSummary()
	return code
}

func printSummary() {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(summary) == 0 {
		return
	}
	fmt.Println()
	fmt.Println("=== interop summary")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tENGINE\tVERSIONS CHECKED\tRESULT")
	for _, r := range summary {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Case, r.Engine, r.Versions, r.Result)
	}
	_ = tw.Flush()
}

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  error
)

// python returns the venv python from scripts/venv.sh (installing the pinned
// packages the first time).
func python(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(testutil.RepoRoot(), "scripts", "venv.sh"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			pythonErr = fmt.Errorf("scripts/venv.sh: %w: %s", err, tail(stderr.String(), 20))
			return
		}
		pythonPath = strings.TrimSpace(string(out))
	})
	if pythonErr != nil {
		t.Fatal(pythonErr)
	}
	return pythonPath
}

// script is the path of a file in scripts/interop.
func script(name string) string {
	return filepath.Join(testutil.RepoRoot(), "scripts", "interop", name)
}

// engineCheck is one read of a table the engine must do.
type engineCheck struct {
	ID        string          `json:"id"`
	Table     string          `json:"table"`
	Version   *int64          `json:"version"`
	Timestamp *string         `json:"timestamp"`
	Schema    json.RawMessage `json:"schema"`
	Expected  string          `json:"expected"`
}

type engineManifest struct {
	Checks []engineCheck `json:"checks"`
	Write  *struct {
		Dir string `json:"dir"`
	} `json:"write,omitempty"`
}

type checkResult struct {
	ID           string   `json:"id"`
	OK           bool     `json:"ok"`
	Rows         int      `json:"rows"`
	ExpectedRows int      `json:"expected_rows"`
	Missing      []string `json:"missing"`
	Extra        []string `json:"extra"`
	NMissing     int      `json:"n_missing"`
	NExtra       int      `json:"n_extra"`
	Error        string   `json:"error"`
	Skipped      string   `json:"skipped"`
}

type writtenTable struct {
	Name     string `json:"name"`
	Table    string `json:"table"`
	Versions []struct {
		Version  int64  `json:"version"`
		RowsFile string `json:"rows_file"`
		Rows     int    `json:"rows"`
	} `json:"versions"`
}

type engineResult struct {
	Engine         string         `json:"engine"`
	Versions       string         `json:"versions"`
	Checks         []checkResult  `json:"checks"`
	Writes         []writtenTable `json:"writes"`
	WriteError     string         `json:"write_error"`
	StartupSeconds float64        `json:"startup_seconds"`
	Seconds        float64        `json:"seconds"`
}

// runEngine runs scripts/interop/engines.py for one engine on a manifest
// and returns its result.
func runEngine(ctx context.Context, py, work, engine string, m engineManifest) (*engineResult, error) {
	dir := filepath.Join(work, "engine-"+engine)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	mb, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	manifest := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(manifest, mb, 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "result.json")
	logPath := filepath.Join(dir, "engine.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, py, script("engines.py"), "--engine", engine, "--manifest", manifest, "--out", out)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "TZ=UTC", "SPARK_LOCAL_IP=127.0.0.1", "PYSPARK_PYTHON="+py, "PYTHONUNBUFFERED=1")
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		lg, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s: %w: %s", engine, err, tail(string(lg), 30))
	}
	rb, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var res engineResult
	if err := json.Unmarshal(rb, &res); err != nil {
		return nil, fmt.Errorf("%s result: %w", engine, err)
	}
	return &res, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
