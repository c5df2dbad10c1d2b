package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// waitReady polls until the daemon consumes in a generation.
func waitReady(t testing.TB, m *Metrics, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !m.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkIDs asserts the table holds exactly messages from..to-1, once each by
// payload and by (partition, offset), and that each partition's txn is its
// highest offset in the table.
func checkIDs(t testing.TB, url string, from, to int, appPrefix, topic string) {
	t.Helper()
	rows, snap := readRows(t, url)
	seen := map[string]int{}
	po := map[[2]int64]bool{}
	maxOff := map[int64]int64{}
	for _, r := range rows {
		id, _ := r["id"].(string)
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("%s twice", id)
		}
		k := [2]int64{r["kafka_partition"].(int64), r["kafka_offset"].(int64)}
		if po[k] {
			t.Errorf("(partition %d, offset %d) twice", k[0], k[1])
		}
		po[k] = true
		if o, ok := maxOff[k[0]]; !ok || k[1] > o {
			maxOff[k[0]] = k[1]
		}
	}
	for i := from; i < to; i++ {
		if seen[fmt.Sprintf("m%07d", i)] != 1 {
			t.Errorf("message m%07d in the table %d times", i, seen[fmt.Sprintf("m%07d", i)])
		}
	}
	for p, o := range maxOff {
		if v, ok := snap.Txn(appID(appPrefix, topicPartition{topic, int(p)})); !ok || v != o {
			t.Errorf("partition %d: txn %d (%v), max offset %d", p, v, ok, o)
		}
	}
	if len(rows) != to-from {
		t.Fatalf("table has %d rows, want %d (messages %d..%d)", len(rows), to-from, from, to-1)
	}
}

// TestGapsStartLatest: with Start=latest on an empty table, messages
// produced before the daemon starts are skipped and every later one lands;
// a restart resumes from the offsets in the table, not from the end.
func TestGapsStartLatest(t *testing.T) {
	brokers := startBroker(t, 2, "late")
	url := filepath.Join(t.TempDir(), "late")
	w := newProducer(brokers, "late")
	defer w.Close()
	const before, during, stopped = 200, 60, 40
	produceJSON(t, w, 0, before)

	o := testOptions(t, brokers, url, "late")
	o.Start = StartLatest
	stop := runDaemon(t, o)
	// Ready means the generation resolved "latest" to concrete offsets:
	// everything produced from now on must land.
	waitReady(t, o.Metrics, 15*time.Second)
	produceJSON(t, w, before, before+during)
	waitRows(t, url, during, 15*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	checkIDs(t, url, before, before+during, "test", "late")

	// Produced while no daemon runs: a restart (still Start=latest) must
	// resume from the table's offsets and pick these up.
	produceJSON(t, w, before+during, before+during+stopped)
	o2 := testOptions(t, brokers, url, "late")
	o2.Start = StartLatest
	o2.UntilEnd = true
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := Run(ctx, o2); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	checkIDs(t, url, before, before+during+stopped, "test", "late")
	t.Logf("skipped %d earlier messages; %d + %d later ones landed exactly once", before, during, stopped)
}
