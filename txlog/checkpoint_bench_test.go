package txlog

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// load300k unpacks the 300k-add archive into a temp dir, replays its JSON
// log and writes a checkpoint of the result at the last version. It returns
// the table dir and the checkpoint's version.
func load300k(b *testing.B) (string, int64, int) {
	b.Helper()
	archive := testutil.Testdata(b, "archives", "300k-add-files-100-col-partitioned.tar.zst")
	tmp := b.TempDir()
	if out, err := exec.CommandContext(b.Context(), "tar", "--zstd", "-xf", archive, "-C", tmp).CombinedOutput(); err != nil {
		b.Skipf("cannot unpack %s: %v %s", archive, err, out)
	}
	dir := filepath.Join(tmp, "300k-add-files-100-col-partitioned")
	var last int64
	for v := int64(0); ; v++ {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(CommitKey(v)))); err != nil {
			last = v - 1
			break
		}
	}
	s := replayJSON(b, dir, last)
	adds := make([]*Add, 0, len(s.adds))
	for _, a := range s.adds {
		adds = append(adds, a)
	}
	d := CheckpointData{Protocol: s.protocol, Metadata: s.metadata, Files: filesOf(adds, nil)}
	st := openTestStore(b, dir)
	if _, err := WriteCheckpoint(context.Background(), st, last, d); err != nil {
		b.Fatal(err)
	}
	return dir, last, len(adds)
}

// BenchmarkReadCheckpoint300k reads a checkpoint of 300,000 adds (the
// snapshot-load hot path).
func BenchmarkReadCheckpoint300k(b *testing.B) {
	dir, version, nadds := load300k(b)
	st := openTestStore(b, dir)
	f, _ := ParseLogFile(CheckpointKey(version))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for a, err := range ReadCheckpoint(context.Background(), st, []LogFile{f}, nil) {
			if err != nil {
				b.Fatal(err)
			}
			if a.Add != nil {
				n++
			}
		}
		if n != nadds {
			b.Fatalf("read %d adds, want %d", n, nadds)
		}
	}
	b.ReportMetric(float64(nadds)*float64(b.N)/b.Elapsed().Seconds(), "adds/s")
}
