package table_test

// Reliability suite, crash points: writer processes (re-executions of this
// test binary) are killed with SIGKILL at chosen and at random points; the
// table must never show a partial commit, and Vacuum must later remove the
// files the dead writers left unreferenced, and nothing else.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

const crashChildEnv = "KAPPA_RELIABILITY_CRASH_CHILD"

const crashAppID = "crash-writer"

// TestCrashChildWriter is the body of the writer processes; it does nothing
// in a normal run. Modes:
//
//	files|<url>: write data files (one batch) and a transaction holding
//	  them, print "FILES <json paths>", then wait on stdin (to be killed).
//	loop|<url>:  append batch n = txn+1, n+2, ... with txn(crashAppID, n),
//	  printing "COMMITTED <n> <version>" after each, until killed.
func TestCrashChildWriter(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("crash-test child process only")
	}
	mode, url, _ := strings.Cut(spec, "|")
	ctx := context.Background()
	tbl, err := table.Open(ctx, url, table.WithMaxCommitRetries(100))
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "files":
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w, err := table.NewWriter(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, crashRows(1_000_000)); err != nil {
			t.Fatal(err)
		}
		adds, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddFiles(adds...)
		var paths []string
		for _, a := range adds {
			paths = append(paths, a.Path)
		}
		b, _ := json.Marshal(paths)
		fmt.Printf("FILES %s\n", b)
		_, _ = io.Copy(io.Discard, os.Stdin) // killed here, before Commit
		t.Fatal("stdin closed: the parent should have killed this process")
	case "loop":
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		if v, ok := snap.Txn(crashAppID); ok {
			n = v + 1
		}
		for ; n < 10_000; n++ {
			v, err := tbl.Append(ctx, crashRows(n), table.WithAppTransaction(crashAppID, n))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("COMMITTED %d %d\n", n, v)
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
}

// crashRows is batch n: ids n*10 .. n*10+4.
func crashRows(n int64) []map[string]any {
	rows := make([]map[string]any, 5)
	for j := range rows {
		rows[j] = map[string]any{"id": n*10 + int64(j), "writer": "crash"}
	}
	return rows
}

type crashChild struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
	stdin io.WriteCloser
}

func startCrashChild(t *testing.T, mode, url string) *crashChild {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChildWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+mode+"|"+url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, lines: bufio.NewScanner(stdout), stdin: stdin}
	t.Cleanup(func() { c.kill(t) })
	return c
}

// next returns the next protocol line of the child (skipping test output).
func (c *crashChild) next(t *testing.T, prefix string) string {
	t.Helper()
	for c.lines.Scan() {
		if rest, ok := strings.CutPrefix(c.lines.Text(), prefix+" "); ok {
			return rest
		}
	}
	t.Fatalf("child exited before printing %s (%v)", prefix, c.lines.Err())
	return ""
}

// kill sends SIGKILL and reaps the child.
func (c *crashChild) kill(t *testing.T) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	_ = c.stdin.Close()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() != syscall.SIGKILL {
		t.Errorf("child ended by %v", ws.Signal())
	}
}

func TestCrashBetweenDataFilesAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	url := "file://" + dir
	if _, err := table.Create(ctx, url, relSchema(), table.WithoutAutoCheckpoint()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var orphans []string
	crashes := 0
	committedBatches := int64(-1)
	for round := range 4 {
		// A writer killed with its files written and its commit built.
		c := startCrashChild(t, "files", url)
		var paths []string
		if err := json.Unmarshal([]byte(c.next(t, "FILES")), &paths); err != nil || len(paths) == 0 {
			t.Fatalf("child files: %v %v", paths, err)
		}
		c.kill(t)
		crashes++
		orphans = append(orphans, paths...)
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				t.Fatalf("the killed writer's file %s is not on disk: %v", p, err)
			}
		}
		// A looping writer killed at a random point (possibly mid-commit).
		c = startCrashChild(t, "loop", url)
		acked := int64(-1)
		for range 1 + rng.IntN(3) {
			line := c.next(t, "COMMITTED")
			n, _ := strconv.ParseInt(strings.Fields(line)[0], 10, 64)
			acked = n
		}
		time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond) // land the kill anywhere in the next append
		c.kill(t)
		crashes++
		committedBatches = checkCrashTable(ctx, t, url, orphans)
		if committedBatches < acked {
			t.Fatalf("round %d: acknowledged batch %d is not in the table (txn %d)", round, acked, committedBatches)
		}
	}
	// Vacuum with zero retention (Force, and a clock an hour ahead so every
	// file is older than the cutoff): the orphans go, nothing referenced does.
	tbl, err := table.Open(ctx, url, table.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	before, _ := tbl.Snapshot(ctx)
	res, err := tbl.Vacuum(ctx, table.VacuumOptions{Retention: time.Nanosecond, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, f := range res.Files {
		deleted[f] = true
	}
	for _, p := range orphans {
		if !deleted[p] {
			t.Errorf("vacuum kept the orphan %s", p)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); !os.IsNotExist(err) {
			t.Errorf("orphan %s still on disk (%v)", p, err)
		}
	}
	for _, a := range before.Files() {
		if deleted[a.Path] {
			t.Errorf("vacuum deleted the live file %s", a.Path)
		}
	}
	if got := checkCrashTable(ctx, t, url, nil); got != committedBatches {
		t.Errorf("after vacuum: txn %d, want %d", got, committedBatches)
	}
	var temps []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), store.TempPrefix) {
			temps = append(temps, p)
		}
		return nil
	})
	t.Logf("crashes survived: %d; batches committed %d; orphan files %d, vacuum deleted %d (%d other files), leftover store temp files %d %v",
		crashes, committedBatches+1, len(orphans), len(res.Files), len(res.Files)-len(orphans), len(temps), temps)
}

// checkCrashTable checks the table after a crash: every commit file parses
// and versions are contiguous; the rows are exactly batches 0..txn, each
// once; no live file is one of the killed writers' orphans. It returns the
// txn version.
func checkCrashTable(ctx context.Context, t *testing.T, url string, orphans []string) int64 {
	t.Helper()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var versions []int64
	for info, err := range st.List(ctx, txlog.LogDir, "") {
		if err != nil {
			t.Fatal(err)
		}
		f, ok := txlog.ParseLogFile(info.Key)
		if !ok || f.Kind != txlog.KindCommit {
			continue
		}
		versions = append(versions, f.Version)
		data, err := st.Get(ctx, info.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := txlog.ParseCommit(data); err != nil || len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("partial or corrupt commit %s (%d bytes): %v", info.Key, len(data), err)
		}
	}
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i) {
			t.Fatalf("versions not contiguous: %v", versions)
		}
	}
	tbl, err := table.OpenStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txn, ok := snap.Txn(crashAppID)
	if !ok {
		txn = -1
	}
	isOrphan := map[string]bool{}
	for _, p := range orphans {
		isOrphan[p] = true
	}
	for _, a := range snap.Files() {
		if isOrphan[a.Path] {
			t.Errorf("uncommitted file %s is live", a.Path)
		}
	}
	got := map[int64]int{}
	for row, err := range reader.NewScan(snap, reader.WithColumns("id")).Rows(ctx) {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		got[row.Values[0].(int64)]++
	}
	for n := int64(0); n <= txn; n++ {
		for _, r := range crashRows(n) {
			if id := r["id"].(int64); got[id] != 1 {
				t.Errorf("row %d of committed batch %d appears %d times", id, n, got[id])
			}
			delete(got, r["id"].(int64))
		}
	}
	if len(got) > 0 {
		t.Errorf("rows beyond the committed txn %d: %v", txn, got)
	}
	return txn
}
