package pq

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestWriteSlotsMatchesWriteRow writes the same rows as maps and as slots
// (names in another order than the schema, an extra name, a partition
// column) and expects the same files, stats and errors.
func TestWriteSlotsMatchesWriteRow(t *testing.T) {
	ctx := context.Background()
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"id","type":"long","nullable":false,"metadata":{}},
	{"name":"p","type":"string","nullable":true,"metadata":{}},
	{"name":"s","type":{"type":"struct","fields":[{"name":"a","type":"integer","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
	{"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},
	{"name":"x","type":"double","nullable":true,"metadata":{}}]}`)
	names := []string{"x", "tags", "extra", "p", "id", "s"}
	rows := []map[string]any{
		{"id": 1, "p": "a", "s": map[string]any{"a": 7}, "tags": []any{"u", nil}, "x": 1.5, "extra": true},
		{"id": 2, "p": nil, "tags": []any{}},
		{"id": 3, "p": "a", "s": nil, "x": "2.25"},
		{"id": 4, "p": "b", "s": map[string]any{}},
	}
	bad := []map[string]any{
		{"p": "a"},            // id missing
		{"id": nil, "p": "a"}, // id null
		{"id": "z", "p": "a"}, // id not a number
		{"id": 5, "x": []any{1}},
	}
	toSlots := func(m map[string]any) []any {
		vals := make([]any, len(names))
		for i, n := range names {
			v, ok := m[n]
			if !ok {
				v = Missing
			}
			vals[i] = v
		}
		return vals
	}
	for _, ignore := range []bool{true, false} {
		mpA, mpB := newMemPut(), newMemPut()
		opts := Options{Schema: st, PartitionColumns: []string{"p"}, IgnoreUnknownFields: ignore}
		wa, err := NewFileWriter(mpA, opts)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := NewFileWriter(mpB, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range append(append([]map[string]any{}, rows...), bad...) {
			ea := wa.WriteRow(ctx, r)
			eb := wb.WriteSlots(ctx, names, toSlots(r))
			if (ea == nil) != (eb == nil) || ea != nil && ea.Error() != eb.Error() {
				t.Fatalf("ignore=%v row %d: WriteRow error %v, WriteSlots error %v", ignore, i, ea, eb)
			}
			if i >= len(rows) && (eb == nil || !errors.Is(eb, ErrSchemaMismatch)) {
				t.Fatalf("bad row %d accepted: %v", i, eb)
			}
			if !ignore && i < len(rows) && ea == nil && r["extra"] != nil {
				t.Fatalf("row %d with an unknown column accepted", i)
			}
		}
		aa, err := wa.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ab, err := wb.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(aa) != len(ab) || len(aa) == 0 {
			t.Fatalf("%d files from maps, %d from slots", len(aa), len(ab))
		}
		pv := func(p *string) string {
			if p == nil {
				return "<null>"
			}
			return *p
		}
		byPart := map[string]string{}
		for _, a := range aa {
			byPart[pv(a.PartitionValues["p"])] = a.Stats
		}
		for _, b := range ab {
			if got, want := b.Stats, byPart[pv(b.PartitionValues["p"])]; got != want {
				t.Fatalf("partition %q: slot stats %s, map stats %s", pv(b.PartitionValues["p"]), got, want)
			}
		}
		for _, ka := range mpA.keys() {
			dir := ka[:strings.LastIndex(ka, "/")+1]
			var kb string
			for _, k := range mpB.keys() {
				if strings.HasPrefix(k, dir) && !strings.Contains(k[len(dir):], "/") {
					kb = k
				}
			}
			fa, fb := openFile(t, mpA.m[ka]), openFile(t, mpB.m[kb])
			if fa.NumRows() != fb.NumRows() {
				t.Fatalf("%s: %d rows from maps, %d from slots", dir, fa.NumRows(), fb.NumRows())
			}
			if string(mpA.m[ka]) != string(mpB.m[kb]) {
				t.Fatalf("%s: files differ", dir)
			}
		}
	}
}

func TestWriteSlotsLengthMismatch(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`)
	w, err := NewFileWriter(newMemPut(), Options{Schema: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSlots(context.Background(), []string{"id"}, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("got %v", err)
	}
}
