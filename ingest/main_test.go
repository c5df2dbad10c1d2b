package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
