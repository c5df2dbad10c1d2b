package txlog

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/parquet-go/parquet-go"
)

const roundTripSchema = `{"type":"struct","fields":[
 {"name":"s","type":"string","nullable":true,"metadata":{}},
 {"name":"l","type":"long","nullable":true,"metadata":{}},
 {"name":"i","type":"integer","nullable":true,"metadata":{}},
 {"name":"sh","type":"short","nullable":true,"metadata":{}},
 {"name":"b","type":"byte","nullable":true,"metadata":{}},
 {"name":"f","type":"float","nullable":true,"metadata":{}},
 {"name":"d","type":"double","nullable":true,"metadata":{}},
 {"name":"bool","type":"boolean","nullable":true,"metadata":{}},
 {"name":"bin","type":"binary","nullable":true,"metadata":{}},
 {"name":"dt","type":"date","nullable":true,"metadata":{}},
 {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
 {"name":"ntz","type":"timestamp_ntz","nullable":true,"metadata":{}},
 {"name":"dec","type":"decimal(10,2)","nullable":true,"metadata":{}},
 {"name":"dsmall","type":"decimal(5,3)","nullable":true,"metadata":{}},
 {"name":"dbig","type":"decimal(30,4)","nullable":true,"metadata":{}},
 {"name":"st","type":{"type":"struct","fields":[
   {"name":"x","type":"long","nullable":true,"metadata":{}},
   {"name":"inner","type":{"type":"struct","fields":[{"name":"y","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
 {"name":"arr","type":{"type":"array","elementType":"long","containsNull":true},"nullable":true,"metadata":{}},
 {"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}},
 {"name":"p_date","type":"date","nullable":true,"metadata":{}},
 {"name":"p_int","type":"integer","nullable":true,"metadata":{}},
 {"name":"p_str","type":"string","nullable":true,"metadata":{}}
]}`

func ptr[T any](v T) *T { return &v }

// filesOf yields adds then removes as CheckpointData.Files.
func filesOf(adds []*Add, removes []*Remove) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		for _, a := range adds {
			if !yield(Action{Add: a}, nil) {
				return
			}
		}
		for _, r := range removes {
			if !yield(Action{Remove: r}, nil) {
				return
			}
		}
	}
}

// roundTripData returns checkpoint data with n adds and two removes (also
// returned, for comparisons).
func roundTripData(n int, conf map[string]string) (CheckpointData, []*Add, []*Remove) {
	d := CheckpointData{
		Protocol: &Protocol{
			MinReaderVersion: 3, MinWriterVersion: 7,
			ReaderFeatures: []string{"deletionVectors", "timestampNtz"},
			WriterFeatures: []string{"deletionVectors", "timestampNtz", "domainMetadata"},
		},
		Metadata: &Metadata{
			ID: "6a1c1b0e-0000-4000-8000-000000000001", Name: ptr("rt"),
			Format: Format{Provider: "parquet", Options: map[string]string{}}, SchemaString: roundTripSchema,
			PartitionColumns: []string{"p_date", "p_int", "p_str"}, CreatedTime: ptr(int64(1700000000000)),
			Configuration: conf,
		},
		Txns:           []*Txn{{AppID: "app-1", Version: 42, LastUpdated: ptr(int64(1700000000001))}, {AppID: "app-2", Version: 7}},
		DomainMetadata: []*DomainMetadata{{Domain: "delta.rowTracking", Configuration: `{"rowIdHighWaterMark":9}`}},
	}
	var adds []*Add
	for i := 0; i < n; i++ {
		stats := fmt.Sprintf(`{"numRecords":%d,"minValues":{"s":"a%03d","l":%d,"i":-%d,"sh":3,"b":-4,"f":1.5,"d":-2.25,"dt":"2021-01-0%d","ts":"2021-01-01T10:00:00.123Z","ntz":"2021-01-01T10:00:00.456","dec":-1.50,"dsmall":0.125,"dbig":123456789012345678901.2345,"st":{"x":1,"inner":{"y":"yy"}}},"maxValues":{"s":"z","l":%d,"i":%d,"sh":30,"b":40,"f":2.5,"d":1e300,"dt":"2021-12-31","ts":"2022-01-01T00:00:00.000Z","ntz":"2022-01-01T00:00:00.000","dec":99999999.99,"dsmall":-0.5,"dbig":-1.0001,"st":{"x":9,"inner":{"y":"zz"}}},"nullCount":{"s":0,"l":1,"i":0,"sh":0,"b":0,"f":0,"d":0,"bool":2,"bin":3,"dt":0,"ts":0,"ntz":0,"dec":0,"dsmall":0,"dbig":0,"st":{"x":0,"inner":{"y":4}},"arr":5,"m":6},"tightBounds":true}`,
			100+i, i, i, i, 1+i%9, i*10, i)
		a := &Add{
			Path:            fmt.Sprintf("p_date=2021-01-01/p_int=%d/part-%05d.parquet", i%3, i),
			PartitionValues: map[string]*string{"p_date": ptr("2021-01-01"), "p_int": ptr(fmt.Sprint(i % 3)), "p_str": nil},
			Size:            int64(1000 + i), ModificationTime: 1700000000000 + int64(i), DataChange: true,
			Stats: stats,
		}
		if i%2 == 0 {
			a.PartitionValues["p_str"] = ptr(fmt.Sprintf("v %d/ü", i))
			a.Tags = map[string]string{"INSERTION_TIME": "1", "k": ""}
		}
		if i%5 == 0 {
			a.DeletionVector = &DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^", Offset: ptr(int32(1)), SizeInBytes: 36, Cardinality: 2}
			a.BaseRowID, a.DefaultRowCommitVersion = ptr(int64(i*100)), ptr(int64(3))
		}
		if i%7 == 0 {
			a.DeletionVector = &DeletionVector{StorageType: "i", PathOrInlineDv: "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", SizeInBytes: 40, Cardinality: 6, MaxRowIndex: ptr(int64(9))}
		}
		adds = append(adds, a)
	}
	removes := []*Remove{
		{
			Path: "old-1.parquet", DeletionTimestamp: ptr(int64(1700000000500)), DataChange: true, ExtendedFileMetadata: ptr(true),
			PartitionValues: map[string]*string{"p_date": ptr("2020-01-01"), "p_int": nil, "p_str": ptr("x")}, Size: ptr(int64(77)),
		},
		{
			Path: "old-2.parquet", DeletionTimestamp: ptr(int64(1700000000600)),
			DeletionVector: &DeletionVector{StorageType: "p", PathOrInlineDv: "s3://b/dv.bin", Offset: ptr(int32(4)), SizeInBytes: 10, Cardinality: 1},
		},
	}
	d.Files = filesOf(adds, removes)
	return d, adds, removes
}

func readCheckpointActions(t *testing.T, dir string, version int64) []Action {
	t.Helper()
	st := openTestStore(t, dir)
	f, ok := ParseLogFile(CheckpointKey(version))
	if !ok {
		t.Fatal("bad key")
	}
	var out []Action
	for a, err := range ReadCheckpoint(context.Background(), st, []LogFile{f}, nil) {
		if err != nil {
			t.Fatalf("ReadCheckpoint: %v", err)
		}
		out = append(out, a)
	}
	return out
}

// canonical returns the actions of d as a comparable, sorted action list;
// stats are decoded so numbers compare by value.
func canonicalActions(t *testing.T, actions []Action) (map[string]any, []string) {
	t.Helper()
	out := map[string]any{}
	var keys []string
	for _, a := range actions {
		var k string
		var v any
		switch {
		case a.Protocol != nil:
			k, v = "protocol", *a.Protocol
		case a.MetaData != nil:
			k, v = "metaData", *a.MetaData
		case a.Txn != nil:
			k, v = "txn/"+a.Txn.AppID, *a.Txn
		case a.DomainMetadata != nil:
			k, v = "domain/"+a.DomainMetadata.Domain, *a.DomainMetadata
		case a.Add != nil:
			c := *a.Add
			c.StatsParsed = nil
			stats := normStats(t, c.Stats)
			c.Stats = ""
			if len(c.Tags) == 0 {
				c.Tags = nil
			}
			k, v = "add/"+fileKey(c.Path, c.DeletionVector), []any{c, stats}
		case a.Remove != nil:
			k, v = "remove/"+fileKey(a.Remove.Path, a.Remove.DeletionVector), *a.Remove
		default:
			t.Fatalf("unexpected action %+v", a)
		}
		if _, dup := out[k]; dup {
			t.Fatalf("duplicate %s", k)
		}
		out[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out, keys
}

func TestWriteCheckpointRoundTrip(t *testing.T) {
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 100 // several row groups without a huge test
	for _, n := range []int{1, 45, 345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			st := openTestStore(t, dir)
			d, adds, removes := roundTripData(n, map[string]string{"delta.enableDeletionVectors": "true"})
			lc, err := WriteCheckpoint(context.Background(), st, 12, d)
			if err != nil {
				t.Fatalf("WriteCheckpoint: %v", err)
			}
			wantRows := int64(2 + len(d.Txns) + len(d.DomainMetadata) + len(adds) + len(removes))
			if lc.Version != 12 || lc.Size != wantRows || *lc.NumOfAddFiles != int64(n) {
				t.Errorf("last checkpoint %+v, want version 12 size %d adds %d", lc, wantRows, n)
			}
			path := filepath.Join(dir, "_delta_log", "00000000000000000012.checkpoint.parquet")
			fi, err := os.Stat(path)
			if err != nil || fi.Size() != *lc.SizeInBytes {
				t.Fatalf("checkpoint file: %v size %v, want %d", err, fi, *lc.SizeInBytes)
			}
			if n == 345 {
				pf := openLocalParquet(t, path)
				if len(pf.RowGroups()) < 3 {
					t.Errorf("%d row groups, want several of <= 100 rows", len(pf.RowGroups()))
				}
			}
			got, err := ReadLastCheckpoint(context.Background(), st)
			if err != nil || got == nil || got.Version != 12 || got.Size != wantRows {
				t.Errorf("ReadLastCheckpoint = %+v, %v", got, err)
			}

			var in []Action
			in = append(in, Action{Protocol: d.Protocol}, Action{MetaData: d.Metadata})
			for _, x := range d.Txns {
				in = append(in, Action{Txn: x})
			}
			for _, x := range d.DomainMetadata {
				in = append(in, Action{DomainMetadata: x})
			}
			for _, x := range adds {
				in = append(in, Action{Add: x})
			}
			for _, x := range removes {
				in = append(in, Action{Remove: x})
			}
			want, wantKeys := canonicalActions(t, in)
			gotA, gotKeys := canonicalActions(t, readCheckpointActions(t, dir, 12))
			if !reflect.DeepEqual(gotKeys, wantKeys) {
				t.Fatalf("action keys differ: got %d, want %d", len(gotKeys), len(wantKeys))
			}
			bad := 0
			for _, k := range wantKeys {
				if !reflect.DeepEqual(gotA[k], want[k]) && bad < 5 {
					bad++
					t.Errorf("%s:\n got  %+v\n want %+v", k, gotA[k], want[k])
				}
			}
		})
	}
}

// TestWriteCheckpointStatsParsed writes a checkpoint without the stats JSON
// column, so reading it must render the stats from add.stats_parsed: the
// result must equal the original stats (minus boolean/binary min/max, which
// Delta never collects).
func TestWriteCheckpointStatsParsed(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 7 // lazily opened stats_parsed cursors across row groups
	d, adds, _ := roundTripData(30, map[string]string{"delta.checkpoint.writeStatsAsJson": "false"})
	for i, a := range adds {
		if i%3 == 1 {
			a.Stats = "" // a file without stats stays without stats
		}
	}
	if _, err := WriteCheckpoint(context.Background(), st, 3, d); err != nil {
		t.Fatal(err)
	}
	// The file has stats_parsed and partitionValues_parsed but no add.stats.
	fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(CheckpointKey(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fi, _ := fh.Stat()
	pf, err := parquet.OpenFile(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	s := pf.Schema()
	for _, path := range [][]string{
		{"add", "stats_parsed", "numRecords"},
		{"add", "stats_parsed", "minValues", "ts"},
		{"add", "stats_parsed", "minValues", "st", "inner", "y"},
		{"add", "stats_parsed", "nullCount", "m"},
		{"add", "partitionValues_parsed", "p_date"},
	} {
		if _, ok := s.Lookup(path...); !ok {
			t.Errorf("column %v missing", path)
		}
	}
	if _, ok := s.Lookup("add", "stats"); ok {
		t.Error("add.stats written although writeStatsAsJson=false")
	}
	if _, ok := s.Lookup("add", "stats_parsed", "minValues", "bool"); ok {
		t.Error("boolean min/max written")
	}
	acts := readCheckpointActions(t, dir, 3)
	byPath := map[string]*Add{}
	for _, a := range acts {
		if a.Add != nil {
			byPath[a.Add.Path] = a.Add
		}
	}
	for _, w := range adds {
		g := byPath[w.Path]
		if g == nil {
			t.Fatalf("missing %s", w.Path)
		}
		if (g.StatsParsed == nil) != (w.Stats == "") {
			t.Errorf("%s: StatsParsed = %v for stats %q", w.Path, g.StatsParsed, w.Stats)
		}
		if gs, ws := normStats(t, g.Stats), normStats(t, w.Stats); !reflect.DeepEqual(gs, ws) {
			t.Errorf("%s stats:\n got  %s\n want %s", w.Path, g.Stats, w.Stats)
		}
	}
}
