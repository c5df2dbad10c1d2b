package table_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

type reading struct {
	Device string    `delta:"device"`
	TS     time.Time `delta:"ts"`
	Temp   *float64
	Tags   []string
	Day    time.Time `delta:"day,type=date"`
	skip   int       //nolint:unused // never set: SchemaOf must ignore unexported fields (asserted below)
}

func TestAppendMapsAndStructs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	schema, err := table.SchemaOf[reading]()
	if err != nil {
		t.Fatal(err)
	}
	if got := schema.String(); got != "struct<device:string,ts:timestamp,Temp:double,Tags:array<string>,day:date>" ||
		schema.Fields[0].Nullable || !schema.Fields[2].Nullable || !schema.Fields[3].Nullable {
		t.Fatalf("inferred schema %s", got)
	}
	tbl, err := table.Create(ctx, dir, schema, table.WithPartitionColumns("day"))
	if err != nil {
		t.Fatal(err)
	}
	temp := 21.5
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	v1, err := table.AppendRows(ctx, tbl, []reading{
		{Device: "a b", TS: day.Add(time.Hour), Temp: &temp, Tags: []string{"x", "y"}, Day: day},
		{Device: "c", TS: day.Add(2 * time.Hour), Day: day.AddDate(0, 0, 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(`{"device":"d","ts":"2024-05-01T05:00:00Z","Temp":1e2,"Tags":["z"],"day":"2024-05-01"}`))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		t.Fatal(err)
	}
	v2, err := tbl.Append(ctx, []map[string]any{row})
	if err != nil {
		t.Fatal(err)
	}
	if v1 != 1 || v2 != 2 {
		t.Fatalf("versions %d %d", v1, v2)
	}
	// a bad row fails the whole append: no commit, no files left behind
	before := countParquet(t, dir)
	_, err = tbl.Append(ctx, []map[string]any{row, {"device": "e", "ts": 5, "Temp": "hot", "day": "2024-05-02"}})
	var re *table.RowError
	if !errors.Is(err, table.ErrSchemaMismatch) || !errors.As(err, &re) || re.Row != 1 || re.Column != "Temp" {
		t.Fatalf("got %v", err)
	}
	if n := countParquet(t, dir); n != before {
		t.Fatalf("%d data files after a failed append, want %d", n, before)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 2 || snap.NumFiles() != 3 {
		t.Fatalf("version %d files %d", snap.Version(), snap.NumFiles())
	}
	rows := 0
	for _, a := range snap.Files() {
		if a.PartitionValues["day"] == nil || !strings.HasPrefix(a.Path, "day="+*a.PartitionValues["day"]+"/part-") {
			t.Fatalf("add %+v", a)
		}
		st, err := a.ParsedStats()
		if err != nil || st.NumRecords == nil {
			t.Fatalf("stats %q: %v", a.Stats, err)
		}
		key, _ := url.PathUnescape(a.Path)
		data, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fl := range f.Schema().Fields() {
			names = append(names, fl.Name())
		}
		if strings.Join(names, ",") != "device,ts,Temp,Tags" {
			t.Fatalf("file columns %v", names)
		}
		rows += int(f.NumRows())
	}
	if rows != 3 {
		t.Fatalf("%d rows", rows)
	}
	// the commit is a blind append
	data, err := os.ReadFile(filepath.Join(dir, "_delta_log", "00000000000000000002.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"operation":"WRITE"`)) || !bytes.Contains(data, []byte(`"isBlindAppend":true`)) || !bytes.Contains(data, []byte(`"mode":"Append"`)) {
		t.Fatalf("commit %s", data)
	}
}

func TestWriterFlushAndTxn(t *testing.T) {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []*txlog.StructField{{Name: "id", Type: &txlog.PrimitiveType{Name: "long"}}}}
	tbl, err := table.Create(ctx, "mem://"+t.Name(), schema)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := table.NewWriter(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, []map[string]any{{"id": 1}, {"id": 2}}); err != nil {
		t.Fatal(err)
	}
	adds, err := w.Flush(ctx)
	if err != nil || len(adds) != 1 || !strings.Contains(adds[0].Stats, `"numRecords":2`) {
		t.Fatalf("%v %v", adds, err)
	}
	v, err := tbl.Append(ctx, []map[string]any{{"id": 3}}, table.WithAppTransaction("app", 7))
	if err != nil {
		t.Fatal(err)
	}
	snap, err = tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := snap.Txn("app"); !ok || got != 7 || v != 1 {
		t.Fatalf("txn %d %v v%d", got, ok, v)
	}
}

func countParquet(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "_delta_log") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return n
}
