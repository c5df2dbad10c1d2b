package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/store/storetest"
	"github.com/kappa-lake/kappa/internal/testutil"
)

func open(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	return st
}

func TestFileConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestFileURLConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, "file://"+t.TempDir()+"/table") })
}

var memSeq atomic.Int64

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, fmt.Sprintf("mem://conformance-%d", memSeq.Add(1)))
	})
}

func TestMemSubPathConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, fmt.Sprintf("mem://conformance-sub-%d/some/table", memSeq.Add(1)))
	})
}

func TestSubConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Sub(open(t, t.TempDir()), "tables/events")
	})
}

func TestS3Conformance(t *testing.T) {
	u := testutil.StartS3(t)
	addr := testutil.S3Addr(t, u)
	var seq atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, testutil.S3URL(addr, fmt.Sprintf("t%d/table", seq.Add(1))))
	})
}

func TestS3BucketRoot(t *testing.T) {
	u := testutil.StartS3(t)
	st := open(t, u)
	defer st.Close()
	ctx := t.Context()
	if err := st.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// Another store on a sub-path of the same bucket sees its own keys only.
	sub := open(t, testutil.S3URL(testutil.S3Addr(t, u), "_delta_log"))
	defer sub.Close()
	if got := storetest.Keys(t, sub, "", ""); !slices.Equal(got, []string{"00000000000000000000.json"}) {
		t.Fatalf("sub-path listing = %q", got)
	}
	if strings.Contains(st.URL(), os.Getenv("AWS_SECRET_ACCESS_KEY")) {
		t.Fatalf("URL leaks the secret")
	}
}

func TestMemSharedByName(t *testing.T) {
	ctx := t.Context()
	a := open(t, "mem://shared-by-name")
	b := open(t, "mem://shared-by-name")
	other := open(t, "mem://another-name")
	if err := a.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("second Open of the same name: Get = %q, %v", got, err)
	}
	if err := b.PutIfAbsent(ctx, "k", []byte("w")); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent across opens: %v", err)
	}
	if _, err := other.Get(ctx, "k"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("another name sees the key: %v", err)
	}
}

func TestOpenSchemes(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, u := range []string{dir, "file://" + dir, "file://localhost" + dir, "relative/dir"} {
		st, err := store.Open(ctx, u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		fsst, ok := st.(*store.FileStore)
		if !ok || !filepath.IsAbs(fsst.Root()) {
			t.Fatalf("Open(%q) = %T, want an absolute *FileStore", u, st)
		}
	}
	_, err := store.Open(ctx, "ftp://user:hunter22@host/x")
	if !errors.Is(err, store.ErrUnsupportedScheme) {
		t.Fatalf("ftp: err = %v, want ErrUnsupportedScheme", err)
	}
	if strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("error leaks the password: %v", err)
	}
	for _, bad := range []string{"file://otherhost/x", "file:///x?secret=abc", "mem://x?a=b", "mem://x/../y"} {
		if _, err := store.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", bad)
		} else if strings.Contains(err.Error(), "abc") {
			t.Errorf("Open(%q) error leaks a secret: %v", bad, err)
		}
	}
}

func TestS3OpenErrorRedacted(t *testing.T) {
	// An unknown parameter makes gocloud fail; the error must not carry the secret.
	_, err := store.Open(t.Context(), "s3://b?aws_secret=topsecretvalue&bogus=1")
	if err == nil {
		t.Fatal("Open with an unknown parameter succeeded")
	}
	if strings.Contains(err.Error(), "topsecretvalue") {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{
			"s3://bucket/path?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1",
			"s3://bucket/path?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1",
		},
		{"s3://bucket?secret_access_key=abc&region=x", "s3://bucket?secret_access_key=REDACTED&region=x"},
		{"azblob://c?sig=abcd&sv=2020&sas_token=zz", "azblob://c?sig=REDACTED&sv=2020&sas_token=REDACTED"},
		{"https://user:pass@host/x", "https://user:REDACTED@host/x"},
		{"s3://AKIAXXXX@bucket/x", "s3://REDACTED@bucket/x"},
		{"gs://b?X-Goog-Signature=aa&token=t&password=p&access_key_id=k", "gs://b?X-Goog-Signature=REDACTED&token=REDACTED&password=REDACTED&access_key_id=REDACTED"},
		{"/plain/path", "/plain/path"},
		{"mem://t", "mem://t"},
		{"s3://b\x7f?secret=zzz", "s3://b\x7f?REDACTED"},
	} {
		if got := store.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIsRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{store.ErrNotExist, false},
		{fmt.Errorf("x: %w", store.ErrPreconditionFailed), false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{fmt.Errorf("x: %w", store.ErrTransient), true},
		{&fs.PathError{Op: "read", Path: "x", Err: errors.New("boom")}, false},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{errors.New("plain"), false},
	} {
		if got := store.IsRetryable(c.err); got != c.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSubURLAndKeys(t *testing.T) {
	ctx := t.Context()
	base := open(t, "mem://sub-url")
	sub := store.Sub(base, "/a/b/")
	if got := sub.URL(); got != "mem://sub-url/a/b" {
		t.Errorf("Sub URL = %q", got)
	}
	if err := sub.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Get(ctx, "a/b/k"); err != nil {
		t.Fatalf("base does not see the sub key: %v", err)
	}
	if err := sub.Put(ctx, "../k", nil); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("Sub escape: err = %v", err)
	}
}

// TestFileNoTempLeftovers checks the directory itself, not only List.
func TestFileNoTempLeftovers(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st := open(t, dir)
	for i := range 5 {
		_ = st.PutIfAbsent(ctx, "_delta_log/x.json", []byte(strconv.Itoa(i)))
		_ = st.Put(ctx, "_delta_log/_last_checkpoint", []byte(strconv.Itoa(i)))
	}
	ents, err := os.ReadDir(filepath.Join(dir, "_delta_log"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"_last_checkpoint", "x.json"}) {
		t.Fatalf("directory holds %q", names)
	}
	// A leftover temp file from a crashed writer is never listed.
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", store.TempPrefix+"dead"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := storetest.Keys(t, st, "_delta_log/", ""); !slices.Equal(got, []string{"_delta_log/_last_checkpoint", "_delta_log/x.json"}) {
		t.Fatalf("List = %q", got)
	}
}

func TestFileErrorsNameURLAndKey(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	_, err := st.Get(t.Context(), "_delta_log/00000000000000000003.json")
	var op *store.OpError
	if !errors.As(err, &op) || op.Op != "get" || op.Key != "_delta_log/00000000000000000003.json" {
		t.Fatalf("err = %#v, want an *OpError for get", err)
	}
	if !strings.Contains(err.Error(), "file://"+dir) {
		t.Fatalf("error %q does not name the store", err)
	}
}

// Cross-process race: the test binary re-executes itself as workers.
const raceWorkerEnv = "KAPPA_STORE_RACE_WORKER"

func TestFileCrossProcessRace(t *testing.T) {
	if os.Getenv(raceWorkerEnv) != "" {
		t.Skip("worker process")
	}
	const (
		procs = 4
		keys  = 300
	)
	dir := t.TempDir()
	cmds := make([]*exec.Cmd, procs)
	stdins := make([]io.WriteCloser, procs)
	results := make([]chan string, procs)
	for p := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFileRaceWorker$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			raceWorkerEnv+"="+strconv.Itoa(p),
			"KAPPA_STORE_RACE_DIR="+dir,
			"KAPPA_STORE_RACE_KEYS="+strconv.Itoa(keys),
		)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if stdins[p], err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
		// Each worker prints READY, waits for a line on stdin, races, and
		// prints WINS n.
		results[p] = make(chan string, 2)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if line := sc.Text(); line == "READY" || strings.HasPrefix(line, "WINS ") {
					results[p] <- line
				}
			}
			close(results[p])
		}()
	}
	for p := range procs { // barrier: all workers are at the starting line
		if line := <-results[p]; line != "READY" {
			t.Fatalf("worker %d did not get ready (%q)", p, line)
		}
	}
	for p := range procs {
		if _, err := io.WriteString(stdins[p], "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	wins := make([]int, procs)
	for p, cmd := range cmds {
		line := <-results[p]
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker %d: %v", p, err)
		}
		n, ok := strings.CutPrefix(line, "WINS ")
		if !ok {
			t.Fatalf("worker %d reported %q", p, line)
		}
		wins[p], _ = strconv.Atoi(n)
	}
	total := 0
	for _, w := range wins {
		total += w
	}
	if total != keys {
		t.Fatalf("wins per process %v: total %d, want exactly %d (one per key)", wins, total, keys)
	}
	st := open(t, filepath.Join(dir, "table"))
	got := storetest.Keys(t, st, "", "")
	if len(got) != keys {
		t.Fatalf("%d keys listed, want %d", len(got), keys)
	}
	for _, k := range got {
		data, err := st.Get(t.Context(), k)
		if err != nil || !bytes.HasPrefix(data, []byte("proc ")) {
			t.Fatalf("key %s: %q, %v", k, data, err)
		}
	}
	t.Logf("%d processes x %d keys: wins per process %v, exactly one winner per key", procs, keys, wins)
}

// TestFileRaceWorker is the worker side of TestFileCrossProcessRace.
func TestFileRaceWorker(t *testing.T) {
	id := os.Getenv(raceWorkerEnv)
	if id == "" {
		t.Skip("only runs as a worker of TestFileCrossProcessRace")
	}
	dir := os.Getenv("KAPPA_STORE_RACE_DIR")
	keys, _ := strconv.Atoi(os.Getenv("KAPPA_STORE_RACE_KEYS"))
	st := open(t, filepath.Join(dir, "table"))
	fmt.Println("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("wait for start: %v", err)
	}
	wins := 0
	for v := range keys {
		payload := bytes.Repeat([]byte("proc "+id+"\n"), 500)
		err := st.PutIfAbsent(t.Context(), fmt.Sprintf("_delta_log/%020d.json", v), payload)
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrPreconditionFailed):
		default:
			t.Fatalf("PutIfAbsent: %v", err)
		}
	}
	fmt.Printf("WINS %d\n", wins)
}

// TestUseAfterClose: every call on a closed file, mem or S3 store fails
// with ErrClosed naming the operation, never with a sentinel that means
// something else (a closed gocloud bucket reports FailedPrecondition,
// which once read as "object already exists"); a second Close is nil.
func TestUseAfterClose(t *testing.T) {
	s3 := testutil.S3Addr(t, testutil.StartS3(t))
	for name, url := range map[string]string{
		"file": t.TempDir(),
		"mem":  fmt.Sprintf("mem://closed-%d", memSeq.Add(1)),
		"s3":   testutil.S3URL(s3, "closed/table"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t, url)
			if err := st.Put(ctx, "a", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			var listErr error
			for _, err := range st.List(ctx, "", "") {
				listErr = err
				break
			}
			_, getErr := st.Get(ctx, "a")
			_, openErr := st.Open(ctx, "a")
			_, statErr := st.Stat(ctx, "a")
			errs := map[string]error{
				"get": getErr, "open": openErr, "stat": statErr, "list": listErr,
				"put":           st.Put(ctx, "b", []byte("x")),
				"put-stream":    st.PutStream(ctx, "b", func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }),
				"put-if-absent": st.PutIfAbsent(ctx, "c", []byte("x")),
				"delete":        st.Delete(ctx, "a"),
			}
			for op, err := range errs {
				if !errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrPreconditionFailed) || store.IsRetryable(err) {
					t.Errorf("%s after Close: err = %v, want ErrClosed only", op, err)
				}
			}
			if err := st.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}
