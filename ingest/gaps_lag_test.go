package ingest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/kappa-lake/kappa/internal/store"
)

// gateStore blocks commit writes (put-if-absent of _delta_log/*.json) while
// the gate is closed, stalling the daemon's flusher in the middle of a
// commit.
type gateStore struct {
	store.Store
	closed  atomic.Bool
	open    chan struct{}
	blocked atomic.Int64
}

func (s *gateStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if s.closed.Load() && strings.HasPrefix(key, "_delta_log/") && strings.HasSuffix(key, ".json") {
		s.blocked.Add(1)
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.PutIfAbsent(ctx, key, data)
}

// scrapeLag reads kappa_ingest_partition_lag of every partition of topic
// from the /metrics endpoint.
func scrapeLag(t testing.TB, addr, topic string) map[int]int64 {
	t.Helper()
	resp, err := httpGet("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	out := map[int]int64{}
	prefix := fmt.Sprintf("kappa_ingest_partition_lag{topic=%q,partition=\"", topic)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		part, val, ok := strings.Cut(rest, "\"} ")
		p, err1 := strconv.Atoi(part)
		v, err2 := strconv.ParseInt(val, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("bad lag line %q", sc.Text())
		}
		out[p] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitLag scrapes until the lag of every partition equals want.
func waitLag(t testing.TB, addr, topic string, want map[int]int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[int]int64
	for {
		got = scrapeLag(t, addr, topic)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition lag %v after %v, want %v", got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produceTo writes messages from..to-1 to one partition.
func produceTo(t testing.TB, brokers []string, topic string, partition, from, to int) {
	t.Helper()
	w := newProducer(brokers, topic)
	w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })
	defer w.Close()
	produceJSON(t, w, from, to)
}

// TestGapsLagMetric checks the per-partition lag served on /metrics: present
// (0) for idle partitions, counting records the table does not hold even
// while the consumer is stalled and fetches nothing new, and back to 0 once
// they are committed.
func TestGapsLagMetric(t *testing.T) {
	prev := endOffsetsInterval
	endOffsetsInterval = 100 * time.Millisecond
	t.Cleanup(func() { endOffsetsInterval = prev })

	brokers := startBroker(t, 3, "lagging")
	url := filepath.Join(t.TempDir(), "lagging")
	// Offsets before the daemon starts: partition 0 holds 5 records.
	produceTo(t, brokers, "lagging", 0, 0, 5)

	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	gate := &gateStore{open: make(chan struct{})}
	o := testOptions(t, brokers, url, "lagging")
	o.MetricsAddr = addr
	o.FlushInterval = 100 * time.Millisecond
	o.wrapStore = func(st store.Store) store.Store {
		if strings.HasSuffix(st.URL(), "_dlq") {
			return st
		}
		gate.Store = st
		return gate
	}
	stop := runDaemon(t, o)
	waitReady(t, o.Metrics, 15*time.Second)

	// Caught up: every assigned partition has a lag series, idle ones too.
	waitRows(t, url, 5, 10*time.Second)
	waitLag(t, addr, "lagging", map[int]int64{0: 0, 1: 0, 2: 0}, 5*time.Second)

	// Stall the flusher inside a commit.
	gate.closed.Store(true)
	produceTo(t, brokers, "lagging", 0, 5, 6)
	deadline := time.Now().Add(10 * time.Second)
	for gate.blocked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flush did not reach its commit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Records the stalled daemon never handles: only the periodic end
	// offset refresh can show them.
	produceTo(t, brokers, "lagging", 1, 6, 26)
	produceTo(t, brokers, "lagging", 2, 26, 36)
	waitLag(t, addr, "lagging", map[int]int64{0: 1, 1: 20, 2: 10}, 5*time.Second)
	if resp, err := httpGet("http://" + addr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("readyz while stalled: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Unstall: everything is committed and the lag drops to 0.
	gate.closed.Store(false)
	close(gate.open)
	waitRows(t, url, 36, 10*time.Second)
	waitLag(t, addr, "lagging", map[int]int64{0: 0, 1: 0, 2: 0}, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, url, 36, "test", "lagging")
}
