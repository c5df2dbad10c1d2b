package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/kappa-lake/kappa/internal/store"
)

// childEnv, when set, makes the test binary run one ingest daemon with the
// JSON-encoded childConfig it holds instead of the tests (for kill -9 tests).
const childEnv = "KAPPA_INGEST_TEST_CHILD"

type childConfig struct {
	Brokers  []string
	Topic    string
	Table    string
	Group    string
	UntilEnd bool
	// Graceful-shutdown test: flush only on exit, metrics served here.
	NoFlush     bool
	MetricsAddr string
	// Bench: BenchmarkIngest's settings (bench schema, big batches).
	Bench bool
	// FlushRows overrides the flush row count when > 0.
	FlushRows int
	// DLQTopic sends dead letters to this topic instead of the DLQ table.
	DLQTopic string
	// CommitDelay delays every commit write of the main table (a slow
	// object store), widening the window between the dead letters and the
	// commit where a kill lands.
	CommitDelay time.Duration
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

func runChild(cfg string) int {
	var c childConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	o := testOptions(nil, c.Brokers, c.Table, c.Topic)
	o.Group = c.Group
	o.UntilEnd = c.UntilEnd
	o.FlushInterval = 50 * time.Millisecond
	o.FlushRows = 300
	if c.NoFlush {
		o.FlushInterval = time.Hour
		o.FlushRows = 1 << 30
	}
	o.MetricsAddr = c.MetricsAddr
	if c.Bench {
		o.Schema = benchSchema()
		o.Metadata = MetadataColumns{}
		o.AppID = "bench"
		o.FlushInterval = 10 * time.Second
		o.FlushRows = 500_000
	}
	if c.FlushRows > 0 {
		o.FlushRows = c.FlushRows
	}
	if c.DLQTopic != "" {
		o.DLQTopic = c.DLQTopic
	}
	if c.CommitDelay > 0 {
		o.wrapStore = func(st store.Store) store.Store { return &slowCommits{Store: st, delay: c.CommitDelay} }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// KAPPA_CHILD_CPUPROFILE=file profiles a daemon child (benchmarks).
	if f := os.Getenv("KAPPA_CHILD_CPUPROFILE"); f != "" {
		pf, _ := os.Create(f)
		_ = pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	if err := Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if c.Bench {
		// Peak RSS of this process image (ru_maxrss would include the
		// parent's at fork time).
		if status, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(line, "VmHWM:") {
					fmt.Println(line)
				}
			}
		}
	}
	return 0
}

// killRun is the kill -9 harness: it starts daemon children (cfg with a
// group per child), producing the next 1000 of total messages before each,
// and SIGKILLs each after 150-1050 ms, until want kills or the time budget
// is spent; then it produces the rest and runs one --until-end child (without
// the commit delay) to completion. It returns the kills.
func killRun(t *testing.T, cfg childConfig, w *kafka.Writer, total int, bad func(int) bool, want int, budget time.Duration) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spawn := func(i int, untilEnd bool) *exec.Cmd {
		c := cfg
		c.Group, c.UntilEnd = fmt.Sprintf("g%d", i), untilEnd
		if untilEnd {
			c.CommitDelay = 0
		}
		js, _ := json.Marshal(c)
		cmd := exec.CommandContext(context.Background(), exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(js))
		if os.Getenv("KAPPA_TEST_LOG") != "" {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, produced := 0, 0
	start := time.Now()
	for i := 0; kills < want && time.Since(start) < budget; i++ {
		if produced < total-1000 {
			produceMixed(t, w, produced, produced+1000, bad)
			produced += 1000
		}
		cmd := spawn(i, false)
		time.Sleep(time.Duration(150+rng.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
	}
	produceMixed(t, w, produced, total, bad)
	t.Logf("%d kills in %v", kills, time.Since(start).Round(time.Millisecond))
	if kills < want {
		t.Errorf("only %d kills", kills)
	}
	cmd := spawn(1000, true)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final until-end run: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("final run did not finish")
	}
	return kills
}
