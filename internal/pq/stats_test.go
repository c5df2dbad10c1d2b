package pq

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkStats recomputes a file's stats by brute force over its canonical
// rows and compares them with the writer's stats JSON.
func checkStats(t *testing.T, seed uint64, p *plan, sp *statsPlan, rows []map[string]any, statsJSON string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(statsJSON))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("seed %d: stats %s: %v", seed, statsJSON, err)
	}
	if got["numRecords"] != json.Number(strconv.Itoa(len(rows))) {
		t.Fatalf("seed %d: numRecords %v", seed, got["numRecords"])
	}
	lookup := func(section string, path []string) (any, bool) {
		cur := got[section]
		for _, s := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[s]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	count := 0
	var walk func(n *node, vals []any)
	walk = func(n *node, vals []any) {
		if n.kind == nStruct {
			for _, c := range n.children {
				sub := make([]any, len(vals))
				for i, v := range vals {
					if v != nil {
						sub[i] = v.(map[string]any)[c.logical]
					}
				}
				walk(c, sub)
			}
			return
		}
		idx := count
		count++
		path := n.path
		nulls := 0
		for _, v := range vals {
			if v == nil {
				nulls++
			}
		}
		gotNull, ok := lookup("nullCount", path)
		if idx >= DefaultIndexedCols {
			if ok {
				t.Fatalf("seed %d: %v has stats beyond the indexed columns", seed, path)
			}
			return
		}
		if !ok || gotNull != json.Number(strconv.Itoa(nulls)) {
			t.Fatalf("seed %d: nullCount %v = %v, want %d (%s)", seed, path, gotNull, nulls, statsJSON)
		}
		gotMin, okMin := lookup("minValues", path)
		gotMax, okMax := lookup("maxValues", path)
		wantMin, wantMax, want := bruteMinMax(n, vals)
		if !want {
			if okMin || okMax {
				t.Fatalf("seed %d: %v has min/max %v/%v, want none", seed, path, gotMin, gotMax)
			}
			return
		}
		if !okMin || !okMax || !sameJSON(gotMin, wantMin) || !sameJSON(gotMax, wantMax) {
			t.Fatalf("seed %d: %v min/max %v/%v, want %v/%v (%s)", seed, path, gotMin, gotMax, wantMin, wantMax, statsJSON)
		}
	}
	vals := make([]any, len(rows))
	for i, r := range rows {
		vals[i] = r
	}
	walk(p.root, vals)
}

func sameJSON(got, want any) bool {
	if gn, ok := got.(json.Number); ok {
		switch w := want.(type) {
		case float64:
			f, err := strconv.ParseFloat(string(gn), 64)
			return err == nil && f == w
		case string:
			return string(gn) == w
		}
	}
	return got == want
}

// bruteMinMax returns the expected JSON min and max of a leaf (false when
// none is expected).
func bruteMinMax(n *node, vals []any) (any, any, bool) {
	if n.kind != nLeaf || n.lt == lBool || n.lt == lBinary {
		return nil, nil, false
	}
	var nonNull []any
	for _, v := range vals {
		if v != nil {
			nonNull = append(nonNull, v)
		}
	}
	if len(nonNull) == 0 {
		return nil, nil, false
	}
	switch n.lt {
	case lLong, lInt, lShort, lByte:
		lo, hi := nonNull[0].(int64), nonNull[0].(int64)
		for _, v := range nonNull {
			lo, hi = min(lo, v.(int64)), max(hi, v.(int64))
		}
		return strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10), true
	case lFloat, lDouble:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range nonNull {
			f := v.(float64)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, nil, false
			}
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
		return lo, hi, true
	case lDate:
		lo, hi := nonNull[0].(int64), nonNull[0].(int64)
		for _, v := range nonNull {
			lo, hi = min(lo, v.(int64)), max(hi, v.(int64))
		}
		f := func(d int64) string { return unixEpochDay.AddDate(0, 0, int(d)).Format("2006-01-02") }
		return f(lo), f(hi), true
	case lTS, lTSNTZ:
		lo, hi := nonNull[0].(int64), nonNull[0].(int64)
		for _, v := range nonNull {
			lo, hi = min(lo, v.(int64)), max(hi, v.(int64))
		}
		layout := "2006-01-02T15:04:05.000Z"
		if n.lt == lTSNTZ {
			layout = "2006-01-02T15:04:05.000"
		}
		hiMs := floorDiv(hi, 1000)
		if hi%1000 != 0 {
			hiMs++
		}
		return time.UnixMilli(floorDiv(lo, 1000)).UTC().Format(layout), time.UnixMilli(hiMs).UTC().Format(layout), true
	case lString:
		lo, hi := nonNull[0].(string), nonNull[0].(string)
		for _, v := range nonNull {
			s := v.(string)
			if s < lo {
				lo = s
			}
			if s > hi {
				hi = s
			}
		}
		tlo, _ := truncateString(lo, false)
		thi, _ := truncateString(hi, true)
		return tlo, thi, true
	case lDec:
		parse := func(v any) *big.Rat { r, _ := new(big.Rat).SetString(string(v.(decStr))); return r }
		lo, hi := nonNull[0], nonNull[0]
		for _, v := range nonNull {
			if parse(v).Cmp(parse(lo)) < 0 {
				lo = v
			}
			if parse(v).Cmp(parse(hi)) > 0 {
				hi = v
			}
		}
		return string(lo.(decStr)), string(hi.(decStr)), true
	}
	return nil, nil, false
}

func TestTruncateString(t *testing.T) {
	long := strings.Repeat("a", 40)
	if got, _ := truncateString(long, false); got != strings.Repeat("a", 32) {
		t.Fatalf("min %q", got)
	}
	got, ok := truncateString(long, true)
	if !ok || got != strings.Repeat("a", 31)+"b" || got <= long {
		t.Fatalf("max %q", got)
	}
	// a max ending in the highest code point increments an earlier character
	s := strings.Repeat("x", 31) + string(rune(0x10FFFF)) + "tail"
	got, ok = truncateString(s, true)
	if !ok || got != strings.Repeat("x", 30)+"y" || got <= s {
		t.Fatalf("max %q", got)
	}
	// surrogates are skipped
	s = strings.Repeat("x", 31) + string(rune(0xD7FF)) + "tail"
	got, _ = truncateString(s, true)
	if r := []rune(got); r[len(r)-1] != 0xE000 || got <= s {
		t.Fatalf("max %q", got)
	}
	if _, ok := truncateString(strings.Repeat(string(rune(0x10FFFF)), 40), true); ok {
		t.Fatal("no upper bound exists")
	}
	if got, _ := truncateString("日本語", true); got != "日本語" {
		t.Fatal(got)
	}
}

func TestStatsJSONShape(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"id","type":"long","nullable":false,"metadata":{}},
	{"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
	{"name":"s","type":{"type":"struct","fields":[{"name":"b","type":"boolean","nullable":true,"metadata":{}},{"name":"bin","type":"binary","nullable":true,"metadata":{}},{"name":"f","type":"float","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
	{"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},
	{"name":"d","type":"decimal(10,2)","nullable":true,"metadata":{}}]}`)
	mp := newMemPut()
	w, err := NewFileWriter(mp, Options{Schema: st})
	if err != nil {
		t.Fatal(err)
	}
	rows := []map[string]any{
		{"id": 1, "ts": "2024-01-02T03:04:05.123456Z", "s": map[string]any{"b": true, "bin": []byte{1}, "f": 1.5}, "tags": []any{"x"}, "d": json.Number("12.30")},
		{"id": -5, "ts": "2024-01-02T03:04:05.000001Z", "s": nil, "tags": nil, "d": nil},
		{"id": 7, "ts": nil, "s": map[string]any{"f": -0.25}, "tags": []any{}, "d": "-0.5"},
	}
	if err := w.Write(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	adds, err := w.Close(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"numRecords":3,` +
		`"minValues":{"id":-5,"ts":"2024-01-02T03:04:05.000Z","s":{"f":-0.25},"d":-0.50},` +
		`"maxValues":{"id":7,"ts":"2024-01-02T03:04:05.124Z","s":{"f":1.5},"d":12.30},` +
		`"nullCount":{"id":0,"ts":1,"s":{"b":2,"bin":2,"f":1},"tags":1,"d":1}}`
	if adds[0].Stats != want {
		t.Fatalf("stats\n got %s\nwant %s", adds[0].Stats, want)
	}
	var v any
	if err := json.Unmarshal([]byte(adds[0].Stats), &v); err != nil {
		t.Fatal(err)
	}
}

func TestStatsColumnsProperties(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"a","type":"long","nullable":true,"metadata":{}},
	{"name":"s","type":{"type":"struct","fields":[{"name":"x","type":"long","nullable":true,"metadata":{}},{"name":"y","type":"long","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},
	{"name":"c","type":"long","nullable":true,"metadata":{}}]}`)
	row := map[string]any{"a": 1, "s": map[string]any{"x": 2, "y": 3}, "c": 4}
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{PropNumIndexedCols: "2"}, `{"numRecords":1,"minValues":{"a":1,"s":{"x":2}},"maxValues":{"a":1,"s":{"x":2}},"nullCount":{"a":0,"s":{"x":0}}}`},
		{map[string]string{PropNumIndexedCols: "0"}, `{"numRecords":1}`},
		{map[string]string{PropNumIndexedCols: "-1"}, `{"numRecords":1,"minValues":{"a":1,"s":{"x":2,"y":3},"c":4},"maxValues":{"a":1,"s":{"x":2,"y":3},"c":4},"nullCount":{"a":0,"s":{"x":0,"y":0},"c":0}}`},
		{map[string]string{PropStatsColumns: "c, s.y"}, `{"numRecords":1,"minValues":{"s":{"y":3},"c":4},"maxValues":{"s":{"y":3},"c":4},"nullCount":{"s":{"y":0},"c":0}}`},
		{map[string]string{PropStatsColumns: "s"}, `{"numRecords":1,"minValues":{"s":{"x":2,"y":3}},"maxValues":{"s":{"x":2,"y":3}},"nullCount":{"s":{"x":0,"y":0}}}`},
	} {
		mp := newMemPut()
		w, err := NewFileWriter(mp, Options{Schema: st, Properties: tc.props})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteRow(t.Context(), row); err != nil {
			t.Fatal(err)
		}
		adds, err := w.Close(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if adds[0].Stats != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.props, adds[0].Stats, tc.want)
		}
	}
}

func mustSchema(t *testing.T, s string) *txlogStruct {
	t.Helper()
	st, err := parseSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var _ = bytes.Compare
