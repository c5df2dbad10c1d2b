package pq

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPartitionedWrite(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"v","type":"long","nullable":true,"metadata":{}},
	{"name":"p","type":"string","nullable":true,"metadata":{}},
	{"name":"d","type":"date","nullable":true,"metadata":{}},
	{"name":"ts","type":"timestamp","nullable":true,"metadata":{}}]}`)
	mp := newMemPut()
	w, err := NewFileWriter(mp, Options{Schema: st, PartitionColumns: []string{"p", "d", "ts"}})
	if err != nil {
		t.Fatal(err)
	}
	rows := []map[string]any{
		{"v": 1, "p": "a b%c/d:e=f", "d": "2024-02-29", "ts": "2021-09-08T11:11:11Z"},
		{"v": 2, "p": "a b%c/d:e=f", "d": "2024-02-29", "ts": "2021-09-08T11:11:11Z"},
		{"v": 3, "p": nil, "d": nil, "ts": nil},
		{"v": 4, "p": "", "d": nil, "ts": nil}, // "" is null, like Spark
		{"v": 5, "p": "日本", "d": "1900-01-01", "ts": time.Date(1960, 1, 1, 0, 0, 0, 123456000, time.UTC)},
	}
	if err := w.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	adds, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(adds) != 3 {
		t.Fatalf("%d adds", len(adds))
	}
	byRows := map[string]string{}
	for _, a := range adds {
		key, err := url.PathUnescape(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := mp.m[key]; !ok {
			t.Fatalf("add path %q (key %q) not stored; have %v", a.Path, key, mp.keys())
		}
		dir := key[:strings.LastIndex(key, "/")+1]
		pv, _ := json.Marshal(a.PartitionValues)
		byRows[dir] = a.Path + " " + string(pv)
		if strings.Contains(a.Stats, `"p"`) {
			t.Fatalf("partition column in stats: %s", a.Stats)
		}
		if !strings.HasSuffix(a.Path, ".zstd.parquet") || a.Size != int64(len(mp.m[key])) || !a.DataChange {
			t.Fatalf("bad add %+v", a)
		}
	}
	want := map[string]string{
		"p=a b%25c%2Fd%3Ae%3Df/d=2024-02-29/ts=2021-09-08 11%3A11%3A11.000000/":                    `p=a%20b%2525c%252Fd%253Ae%253Df/d=2024-02-29/ts=2021-09-08%2011%253A11%253A11.000000/`,
		"p=__HIVE_DEFAULT_PARTITION__/d=__HIVE_DEFAULT_PARTITION__/ts=__HIVE_DEFAULT_PARTITION__/": `p=__HIVE_DEFAULT_PARTITION__/d=__HIVE_DEFAULT_PARTITION__/ts=__HIVE_DEFAULT_PARTITION__/`,
		"p=日本/d=1900-01-01/ts=1960-01-01 00%3A00%3A00.123456/":                                     `p=%E6%97%A5%E6%9C%AC/d=1900-01-01/ts=1960-01-01%2000%253A00%253A00.123456/`,
	}
	wantPV := map[string]string{
		"p=a b%25c%2Fd%3Ae%3Df/d=2024-02-29/ts=2021-09-08 11%3A11%3A11.000000/":                    `{"d":"2024-02-29","p":"a b%c/d:e=f","ts":"2021-09-08 11:11:11.000000"}`,
		"p=__HIVE_DEFAULT_PARTITION__/d=__HIVE_DEFAULT_PARTITION__/ts=__HIVE_DEFAULT_PARTITION__/": `{"d":null,"p":null,"ts":null}`,
		"p=日本/d=1900-01-01/ts=1960-01-01 00%3A00%3A00.123456/":                                     `{"d":"1900-01-01","p":"日本","ts":"1960-01-01 00:00:00.123456"}`,
	}
	for dir, prefix := range want {
		got, ok := byRows[dir]
		if !ok {
			t.Fatalf("no file under %q; have %v", dir, byRows)
		}
		if !strings.HasPrefix(got, prefix+"part-") || !strings.HasSuffix(got, " "+wantPV[dir]) {
			t.Errorf("dir %q: got %s, want path prefix %s and values %s", dir, got, prefix, wantPV[dir])
		}
	}
}

func TestEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"bar+%21": "bar+%2521", "a/b": "a%2Fb", "x\x01y": "x%01y", "{[]}^?*'\"#\\": "%7B%5B%5D}%5E%3F%2A%27%22%23%5C", "é": "é",
	} {
		if got := EscapePartitionName(in); got != want {
			t.Errorf("EscapePartitionName(%q) = %q, want %q", in, got, want)
		}
	}
	// what Spark wrote for data-reader-escaped-chars and data-reader-partition-values
	if got := EscapePath("_2=" + EscapePartitionName("bar+%21") + "/f.parquet"); got != "_2=bar+%252521/f.parquet" {
		t.Error(got)
	}
	if got := EscapePath("as_timestamp=" + EscapePartitionName("2021-09-08 11:11:11") + "/"); got != "as_timestamp=2021-09-08%2011%253A11%253A11/" {
		t.Error(got)
	}
	for f, want := range map[float64]string{0: "0.0", 1: "1.0", 1.5: "1.5", 1e7: "1.0E7", 1.25e-5: "1.25E-5", -3e20: "-3.0E20"} {
		if got := javaFloat(f, 64); got != want {
			t.Errorf("javaFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestRowErrors(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"id","type":"long","nullable":false,"metadata":{}},
	{"name":"b","type":"byte","nullable":true,"metadata":{}},
	{"name":"s","type":{"type":"struct","fields":[{"name":"tags","type":{"type":"array","elementType":"integer","containsNull":false},"nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
	{"name":"m","type":{"type":"map","keyType":"string","valueType":"decimal(4,2)","valueContainsNull":true},"nullable":true,"metadata":{}},
	{"name":"ts","type":"timestamp","nullable":true,"metadata":{}}]}`)
	cases := []struct {
		row  map[string]any
		want string
	}{
		{map[string]any{"b": 1}, "row 1: column id: missing value for a non-nullable column"},
		{map[string]any{"id": nil}, "row 1: column id: null value in a non-nullable column"},
		{map[string]any{"id": json.Number("1.5")}, "row 1: column id: 1.5 is not a long"},
		{map[string]any{"id": 1, "b": 300}, "row 1: column b: 300 out of range for byte"},
		{map[string]any{"id": 1, "s": map[string]any{"tags": []any{1, nil}}}, "row 1: column s.tags[1]: null value in a non-nullable column"},
		{map[string]any{"id": 1, "s": map[string]any{"tags": []any{1, "x"}}}, `row 1: column s.tags[1]: cannot use string "x" as integer`},
		{map[string]any{"id": 1, "m": map[string]any{"k": "123.456"}}, "row 1: column m[k]: 123.456 has more than 2 fractional digits for decimal(4,2)"},
		{map[string]any{"id": 1, "m": map[string]any{"k": "123.4"}}, "row 1: column m[k]: 123.4 does not fit decimal(4,2)"},
		{map[string]any{"id": 1, "ts": "yesterday"}, `row 1: column ts: "yesterday" is not an RFC 3339 timestamp`},
		{map[string]any{"id": 1, "extra": 1}, "row 1: column extra: unknown column (not in the table schema)"},
		{map[string]any{"id": 1, "s": "x"}, `row 1: column s: cannot use string "x" as struct (a JSON object)`},
	}
	for _, tc := range cases {
		mp := newMemPut()
		w, err := NewFileWriter(mp, Options{Schema: st})
		if err != nil {
			t.Fatal(err)
		}
		good := map[string]any{"id": 7, "s": map[string]any{"tags": []any{1, 2}}, "m": map[string]any{"a": "1.5"}}
		err = w.Write(context.Background(), []map[string]any{good, tc.row})
		if err == nil || err.Error() != tc.want || !errors.Is(err, ErrSchemaMismatch) {
			t.Errorf("got %v, want %q", err, tc.want)
			continue
		}
		var re *RowError
		if !errors.As(err, &re) || re.Row != 1 {
			t.Errorf("not a RowError for row 1: %#v", err)
		}
		// the failed row was rolled back: the file holds only the good row
		adds, err := w.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(adds) != 1 || !strings.Contains(adds[0].Stats, `"numRecords":1,`) {
			t.Fatalf("adds %+v", adds)
		}
		got := readFileColumns(t, w.plan, mp.m[adds[0].Path])
		if len(got[0]) != 1 || got[0][0] != int64(7) || len(got[2]) != 2 {
			t.Fatalf("columns after rollback: %v", got)
		}
	}
	// unknown fields can be ignored
	w, _ := NewFileWriter(newMemPut(), Options{Schema: st, IgnoreUnknownFields: true})
	if err := w.WriteRow(context.Background(), map[string]any{"id": 1, "extra": 2}); err != nil {
		t.Fatal(err)
	}
}

func TestRollOverAndRowGroups(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"s","type":"string","nullable":true,"metadata":{}}]}`)
	mp := newMemPut()
	w, err := NewFileWriter(mp, Options{Schema: st, MaxRowsPerRowGroup: 1000, TargetFileSize: 20 << 10, Codec: "snappy"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		if err := w.WriteRow(context.Background(), map[string]any{"id": i, "s": strings.Repeat("x", i%50) + string(rune('a'+i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	adds, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(adds) < 3 {
		t.Fatalf("want several files, got %d", len(adds))
	}
	total := 0
	for _, a := range adds {
		if !strings.HasSuffix(a.Path, ".snappy.parquet") {
			t.Fatal(a.Path)
		}
		data := mp.m[a.Path]
		f := openFile(t, data)
		total += int(f.NumRows())
		for _, rg := range f.RowGroups() {
			if rg.NumRows() > 1000 {
				t.Fatalf("row group of %d rows", rg.NumRows())
			}
		}
		if len(f.RowGroups()) < 2 && a != adds[len(adds)-1] {
			t.Fatalf("%d row groups", len(f.RowGroups()))
		}
	}
	if total != 20000 {
		t.Fatalf("%d rows", total)
	}
}
