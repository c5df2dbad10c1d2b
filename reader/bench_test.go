package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

type benchRow struct {
	ID    int64   `parquet:"id"`
	Key   string  `parquet:"key,dict"`
	Value float64 `parquet:"value"`
}

const benchFiles = 10

func benchRows() int64 {
	if s := os.Getenv("KAPPA_BENCH_ROWS"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= benchFiles {
			return n
		}
	}
	return 10_000_000
}

// benchTable generates (once, cached) a Delta table of n rows in 10 files
// (columns id long ascending, key string with 100 groups, value double) and
// returns its directory and live files. The cache dir is $KAPPA_BENCH_CACHE
// or $TMPDIR/kappa-bench-cache.
func benchTable(b *testing.B, n int64) (string, []*txlog.Add, *txlog.StructType) {
	b.Helper()
	cache := os.Getenv("KAPPA_BENCH_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "kappa-bench-cache")
	}
	dir := filepath.Join(cache, fmt.Sprintf("reader-scan-%d-v1", n))
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
		{Name: "key", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true},
		{Name: "value", Type: &txlog.PrimitiveType{Name: txlog.TypeDouble}, Nullable: true},
	}}
	commit := filepath.Join(dir, "_delta_log", "00000000000000000000.json")
	if data, err := os.ReadFile(commit); err == nil {
		acts, err := txlog.ParseCommit(data)
		if err == nil {
			var adds []*txlog.Add
			for _, a := range acts {
				if a.Add != nil {
					adds = append(adds, a.Add)
				}
			}
			return dir, adds, schema
		}
	}
	b.Logf("generating %d-row bench table in %s", n, dir)
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		b.Fatal(err)
	}
	per := n / benchFiles
	var adds []*txlog.Add
	buf := make([]benchRow, 0, 8192)
	for f := int64(0); f < benchFiles; f++ {
		name := fmt.Sprintf("part-%05d.zstd.parquet", f)
		out, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		w := parquet.NewGenericWriter[benchRow](out, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(128*1024))
		lo, hi := f*per, (f+1)*per
		for id := lo; id < hi; id++ {
			buf = append(buf, benchRow{ID: id, Key: "group-" + strconv.Itoa(int(id*7919%100)), Value: float64(id%1000) / 10})
			if len(buf) == cap(buf) || id == hi-1 {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		info, _ := out.Stat()
		out.Close()
		stats := fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d,"key":"group-0","value":0},"maxValues":{"id":%d,"key":"group-99","value":99.9},"nullCount":{"id":0,"key":0,"value":0}}`, per, lo, hi-1)
		adds = append(adds, &txlog.Add{Path: name, PartitionValues: map[string]*string{}, Size: info.Size(), ModificationTime: 1, DataChange: true, Stats: stats})
	}
	ss, err := txlog.MarshalSchema(schema)
	if err != nil {
		b.Fatal(err)
	}
	acts := []txlog.Action{
		{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &txlog.Metadata{ID: "bench", Format: txlog.Format{Provider: "parquet", Options: map[string]string{}}, SchemaString: ss, PartitionColumns: []string{}, Configuration: map[string]string{}}},
	}
	for _, a := range adds {
		acts = append(acts, txlog.Action{Add: a})
	}
	data, err := txlog.EncodeCommit(acts)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(commit, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, adds, schema
}

type agg struct {
	sum   float64
	count int64
}

// aggregate computes SUM(value), COUNT(*) GROUP BY key with typed access.
func aggregate(b *testing.B, s *Scan) (map[string]*agg, int64) {
	groups := map[string]*agg{}
	dicts := map[*BytesVector][]*agg{}
	var rows int64
	for batch, err := range s.Batches(context.Background()) {
		if err != nil {
			b.Fatal(err)
		}
		keys := batch.Column(0).(*BytesVector)
		vals := batch.Column(1).(*Float64Vector)
		if keys.IsDict() && !keys.Validity().HasNulls() && !vals.Validity().HasNulls() {
			// Dictionary-encoded keys: one hash lookup per distinct code.
			byCode := dicts[keys.Dict]
			if byCode == nil {
				byCode = make([]*agg, keys.Dict.Len())
				dicts[keys.Dict] = byCode
			}
			for i, c := range keys.Codes[:batch.NumRows()] {
				g := byCode[c]
				if g == nil {
					k := keys.Dict.String(int(c))
					if g = groups[k]; g == nil {
						g = &agg{}
						groups[strings.Clone(k)] = g
					}
					byCode[c] = g
				}
				g.sum += vals.Values[i]
				g.count++
			}
			rows += int64(batch.NumRows())
			continue
		}
		for i := range batch.NumRows() {
			k := keys.String(i)
			g := groups[k]
			if g == nil {
				g = &agg{}
				groups[strings.Clone(k)] = g
			}
			if !vals.IsNull(i) {
				g.sum += vals.Values[i]
			}
			g.count++
		}
		rows += int64(batch.NumRows())
	}
	return groups, rows
}

// BenchmarkScanAggregate: SELECT key, SUM(value), COUNT(*) GROUP BY key over
// the whole table, and with a selective predicate (id < 1% of the rows)
// reporting bytes read both ways (both read the columns key, value, id).
func BenchmarkScanAggregate(b *testing.B) {
	n := benchRows()
	dir, adds, schema := benchTable(b, n)
	st, err := store.NewFileStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	src := source{st: st, schema: schema, files: adds, config: map[string]string{}}
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		var rows, bytes int64
		for b.Loop() {
			s := newScan(src, []ScanOption{WithColumns("key", "value", "id")})
			groups, r := aggregate(b, s)
			if r != n || len(groups) != 100 {
				b.Fatalf("rows %d groups %d", r, len(groups))
			}
			rows += r
			bytes = s.Stats().BytesRead
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(bytes), "bytes-read/op")
	})
	// decode only: the same scan without the aggregation, to separate
	// decoding from the consumer's hashing.
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var rows int64
		for b.Loop() {
			s := newScan(src, []ScanOption{WithColumns("key", "value", "id")})
			var r int64
			for batch, err := range s.Batches(context.Background()) {
				if err != nil {
					b.Fatal(err)
				}
				r += int64(batch.NumRows())
			}
			if r != n {
				b.Fatalf("rows %d, want %d", r, n)
			}
			rows += r
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("selective", func(b *testing.B) {
		b.ReportAllocs()
		var rows, bytes int64
		for b.Loop() {
			s := newScan(src, []ScanOption{WithColumns("key", "value", "id"), WithPredicate(Lt(Col("id"), Lit(n/100)))})
			_, r := aggregate(b, s)
			if r != n/100 {
				b.Fatalf("rows %d, want %d", r, n/100)
			}
			rows += r
			bytes = s.Stats().BytesRead
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(bytes), "bytes-read/op")
	})
}
