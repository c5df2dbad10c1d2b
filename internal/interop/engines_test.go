//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func prim(name string) txlog.DataType { return &txlog.PrimitiveType{Name: name} }

func field(name string, t txlog.DataType) *txlog.StructField {
	return &txlog.StructField{Name: name, Type: t, Nullable: true}
}

// allTypesSchema has every primitive Delta type and nested struct, array and
// map columns (with nesting inside them); idNotNull makes "id" NOT NULL.
func allTypesSchema(idNotNull bool) *txlog.StructType {
	inner := &txlog.StructType{Fields: []*txlog.StructField{
		field("x", prim(txlog.TypeDouble)),
		field("tags", &txlog.ArrayType{ElementType: prim(txlog.TypeString), ContainsNull: true}),
	}}
	kv := &txlog.StructType{Fields: []*txlog.StructField{
		field("k", prim(txlog.TypeString)),
		field("v", prim(txlog.TypeLong)),
	}}
	id := field("id", prim(txlog.TypeLong))
	id.Nullable = !idNotNull
	return &txlog.StructType{Fields: []*txlog.StructField{
		id,
		field("b", prim(txlog.TypeByte)),
		field("s", prim(txlog.TypeShort)),
		field("i", prim(txlog.TypeInteger)),
		field("l", prim(txlog.TypeLong)),
		field("f", prim(txlog.TypeFloat)),
		field("d", prim(txlog.TypeDouble)),
		field("dec", &txlog.DecimalType{Precision: 10, Scale: 2}),
		field("bigdec", &txlog.DecimalType{Precision: 38, Scale: 9}),
		field("str", prim(txlog.TypeString)),
		field("bin", prim(txlog.TypeBinary)),
		field("ok", prim(txlog.TypeBoolean)),
		field("day", prim(txlog.TypeDate)),
		field("ts", prim(txlog.TypeTimestamp)),
		field("ntz", prim(txlog.TypeTimestampNTZ)),
		field("st", &txlog.StructType{Fields: []*txlog.StructField{
			field("a", prim(txlog.TypeInteger)),
			field("b", prim(txlog.TypeString)),
			field("inner", inner),
		}}),
		field("arr", &txlog.ArrayType{ElementType: prim(txlog.TypeLong), ContainsNull: true}),
		field("arrst", &txlog.ArrayType{ElementType: kv, ContainsNull: true}),
		field("m", &txlog.MapType{KeyType: prim(txlog.TypeString), ValueType: prim(txlog.TypeInteger), ValueContainsNull: true}),
		field("mnest", &txlog.MapType{KeyType: prim(txlog.TypeString), ValueType: &txlog.ArrayType{ElementType: prim(txlog.TypeString), ContainsNull: true}, ValueContainsNull: true}),
		field("part", prim(txlog.TypeString)),
		field("pint", prim(txlog.TypeInteger)),
	}}
}

// genRow is row i: a spread of ordinary, extreme and null values.
func genRow(i int) map[string]any {
	n := int64(i)
	r := map[string]any{"id": n}
	set := func(k string, v any, nullEvery int) {
		if nullEvery > 0 && i%nullEvery == nullEvery-1 {
			r[k] = nil
			return
		}
		r[k] = v
	}
	set("b", int8(i%256-128), 11)
	set("s", int16(i*131%65536-32768), 13)
	set("i", int32(i*7919-1_000_000), 0)
	set("l", n*1_000_000_007*(1-2*(n%2)), 17)
	f := float32(i)*0.37 - 11.5
	switch i % 53 {
	case 5:
		f = float32(math.Inf(1))
	case 6:
		f = -float32(math.MaxFloat32)
	}
	set("f", f, 19)
	set("d", float64(i)/3.0-7, 23)
	set("dec", fmt.Sprintf("%d.%02d", (i*7919%20000000)-10000000, i%100), 7)
	set("bigdec", fmt.Sprintf("%d%018d.%09d", i*104729, n*n*n, i*12345%1000000000), 29)
	strs := []string{"", "plain", "héllo wörld ✓", "quote\"back\\slash", "tab\tnew\nline", "日本語テキスト"}
	set("str", fmt.Sprintf("%s-%d", strs[i%len(strs)], i), 9)
	set("bin", []byte{byte(i), 0, 0xff, byte(i >> 8)}, 10)
	set("ok", i%3 == 0, 8)
	set("day", time.Date(1969+i%80, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC), 12)
	set("ts", time.Date(1965+i%70, time.Month(1+i%12), 1+i%28, i%24, i%60, (i*7)%60, (i*1_234_567%1_000_000)*1000, time.UTC), 14)
	set("ntz", time.Date(2001+i%20, time.Month(1+i%12), 1+i%28, (i*5)%24, i%60, i%60, (i*7_654_321%1_000_000)*1000, time.UTC), 15)
	var st any
	if i%16 != 15 {
		var tags any = []any{"x", nil, fmt.Sprint(i)}
		if i%4 == 0 {
			tags = []any{}
		}
		st = map[string]any{"a": int32(i), "b": fmt.Sprintf("b%d", i), "inner": map[string]any{"x": float64(i) * 1.5, "tags": tags}}
	}
	r["st"] = st
	switch i % 5 {
	case 0:
		r["arr"] = nil
	case 1:
		r["arr"] = []any{}
	default:
		r["arr"] = []any{n, nil, -n * 1000}
	}
	if i%6 == 0 {
		r["arrst"] = nil
	} else {
		r["arrst"] = []any{map[string]any{"k": "k1", "v": n}, map[string]any{"k": nil, "v": nil}}
	}
	switch i % 4 {
	case 0:
		r["m"] = nil
	case 1:
		r["m"] = map[string]any{}
	default:
		r["m"] = map[string]any{"one": int32(1), fmt.Sprintf("k%d", i): int32(i), "nul": nil}
	}
	if i%3 == 0 {
		r["mnest"] = nil
	} else {
		r["mnest"] = map[string]any{"a": []any{"x", "y"}, "b": []any{}}
	}
	parts := []any{"alpha", "beta", nil, "sp ace/ü=%"}
	r["part"] = parts[i%len(parts)]
	set("pint", int32(i%3), 0)
	return r
}

// kappaTable records a table Kappa wrote: commit times and rows appended.
type kappaTable struct {
	name    string
	path    string
	latest  int64
	commits map[int64]time.Time
}

// writeKappaTable creates a table and commits: 12 appends (an automatic
// checkpoint at 10), an OPTIMIZE compacting the small files (dataChange=false
// removes + adds), more appends, and an explicit checkpoint. Commits are
// spaced by a few milliseconds so timestamp travel has distinct targets.
func writeKappaTable(ctx context.Context, t *testing.T, dir, name string, idNotNull bool, partCols []string) *kappaTable {
	t.Helper()
	path := filepath.Join(dir, name)
	var opts []table.CreateOption
	if len(partCols) > 0 {
		opts = append(opts, table.WithPartitionColumns(partCols...))
	}
	tbl, err := table.Create(ctx, path, allTypesSchema(idNotNull), opts...)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	defer tbl.Close()
	kt := &kappaTable{name: name, path: path, commits: map[int64]time.Time{}}
	note := func(v int64) {
		s, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatalf("%s: snapshot %d: %v", name, v, err)
		}
		kt.commits[v] = s.Timestamp()
		kt.latest = v
		time.Sleep(40 * time.Millisecond) // distinct commit times for timestamp travel
	}
	note(0)
	next := 0
	appendN := func(n int) {
		rows := make([]map[string]any, n)
		for j := range rows {
			rows[j] = genRow(next)
			next++
		}
		v, err := tbl.Append(ctx, rows)
		if err != nil {
			t.Fatalf("%s: append: %v", name, err)
		}
		note(v)
	}
	for range 12 {
		appendN(23)
	}
	// compaction: kappa optimize (bin-packing, dataChange=false)
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil {
		t.Fatalf("%s: optimize: %v", name, err)
	}
	if res.Version < 0 || res.FilesRemoved < 2 {
		t.Fatalf("%s: optimize compacted nothing: %+v", name, res)
	}
	v := res.Version
	note(v)
	for range 3 {
		appendN(17)
	}
	if _, err := tbl.Checkpoint(ctx, kt.latest-1); err != nil {
		t.Fatalf("%s: checkpoint %d: %v", name, kt.latest-1, err)
	}
	for range 2 {
		appendN(11)
	}
	for _, cp := range []int64{10, kt.latest - 3} {
		f := filepath.Join(path, "_delta_log", fmt.Sprintf("%020d.checkpoint.parquet", cp))
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s: expected checkpoint at version %d: %v", name, cp, err)
		}
	}
	return kt
}

// kappaChecks writes Kappa's rows for the versions and timestamps the
// engines must reproduce and returns the checks.
func kappaChecks(ctx context.Context, t *testing.T, kt *kappaTable, work string) []engineCheck {
	t.Helper()
	tbl, err := table.Open(ctx, kt.path)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	var checks []engineCheck
	add := func(id string, snap *table.Snapshot, version *int64, ts *string) {
		rows, err := kappaRows(ctx, snap)
		if err != nil {
			t.Fatalf("%s: kappa read %s: %v", kt.name, id, err)
		}
		exp := filepath.Join(work, "expected", kt.name, strings.NewReplacer(":", "", "@", "_").Replace(id)+".jsonl")
		if err := writeLines(exp, rows); err != nil {
			t.Fatal(err)
		}
		schema, err := txlog.MarshalSchema(snap.Schema())
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, engineCheck{
			ID: kt.name + "@" + id, Table: kt.path, Version: version, Timestamp: ts,
			Schema: json.RawMessage(schema), Expected: exp,
		})
	}
	latest, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Version() != kt.latest {
		t.Fatalf("%s: latest version %d, wrote up to %d", kt.name, latest.Version(), kt.latest)
	}
	add("latest", latest, nil, nil)
	for _, v := range []int64{1, 5, 9, 10, 11, 12, 13, 15, kt.latest - 1} {
		snap, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatalf("%s: version %d: %v", kt.name, v, err)
		}
		add(fmt.Sprintf("v%d", v), snap, &v, nil)
	}
	for _, v := range []int64{2, 8, 10, 12, 14} {
		mid := kt.commits[v].Add(kt.commits[v+1].Sub(kt.commits[v]) / 2)
		snap, err := tbl.Snapshot(ctx, table.AsOf(mid))
		if err != nil {
			t.Fatalf("%s: as of %s: %v", kt.name, mid, err)
		}
		if snap.Version() != v {
			t.Fatalf("%s: kappa as of %s (between commits %d and %d) gave version %d", kt.name, mid, v, v+1, snap.Version())
		}
		ts := mid.UTC().Format("2006-01-02T15:04:05.000000Z")
		add("ts"+ts+"=v"+fmt.Sprint(v), snap, nil, &ts)
	}
	return checks
}

// TestEngines is the kappa-written and engine-written cases: Kappa's tables
// read by Spark, delta-rs and DuckDB; Spark's and delta-rs's tables read by
// Kappa. One Python process per engine does both halves.
func TestEngines(t *testing.T) {
	ctx := t.Context()
	py := python(t)
	work := t.TempDir()
	kdir := filepath.Join(work, "kappa-tables")

	start := time.Now()
	// kappa_plain has a NOT NULL column (Spark then requires the invariants
	// writer feature in the protocol); kappa_part is all nullable.
	plain := writeKappaTable(ctx, t, kdir, "kappa_plain", true, nil)
	part := writeKappaTable(ctx, t, kdir, "kappa_part", false, []string{"part", "pint"})
	var checks []engineCheck
	checks = append(checks, kappaChecks(ctx, t, plain, work)...)
	checks = append(checks, kappaChecks(ctx, t, part, work)...)
	t.Logf("kappa wrote 2 tables (%d and %d versions) and %d expected reads in %s",
		plain.latest+1, part.latest+1, len(checks), time.Since(start).Round(time.Millisecond))

	engines := []string{"spark", "deltalake", "duckdb"}
	results := make(map[string]*engineResult)
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range engines {
		m := engineManifest{Checks: checks}
		if e != "duckdb" {
			m.Write = &struct {
				Dir string `json:"dir"`
			}{Dir: filepath.Join(work, "written-by-"+e)}
		}
		wg.Go(func() {
			began := time.Now()
			res, err := runEngine(ctx, py, work, e, m)
			mu.Lock()
			defer mu.Unlock()
			results[e], errs[e] = res, err
			t.Logf("%s finished in %s", e, time.Since(began).Round(time.Second))
		})
	}
	wg.Wait()

	for _, e := range engines {
		t.Run("kappa-written/"+e, func(t *testing.T) {
			res, err := results[e], errs[e]
			if err != nil {
				record("kappa-written", e, "-", "FAIL: engine did not run")
				t.Fatal(err)
			}
			t.Logf("%s (%s), startup %.1fs, total %.1fs", e, res.Versions, res.StartupSeconds, res.Seconds)
			versions, stamps, failed, skipped := 0, 0, 0, 0
			for _, c := range res.Checks {
				if c.Skipped != "" {
					skipped++
					t.Logf("%s: skipped: %s", c.ID, c.Skipped)
					continue
				}
				if strings.Contains(c.ID, "@ts") {
					stamps++
				} else {
					versions++
				}
				if !c.OK {
					failed++
					t.Errorf("%s: %s read %d rows, kappa %d; error %q; missing (%d) %v; extra (%d) %v",
						c.ID, e, c.Rows, c.ExpectedRows, c.Error, c.NMissing, c.Missing, c.NExtra, c.Extra)
				}
			}
			if len(res.Checks) != len(checks) {
				t.Errorf("%s ran %d checks of %d", e, len(res.Checks), len(checks))
			}
			result := "PASS"
			if failed > 0 || len(res.Checks) != len(checks) {
				result = fmt.Sprintf("FAIL (%d of %d reads differ)", failed, len(checks)-skipped)
			}
			if skipped > 0 {
				result += fmt.Sprintf(" (%d timestamp reads skipped: unsupported by the engine)", skipped)
			}
			record("kappa-written", e+" ("+res.Versions+")",
				fmt.Sprintf("%d versions + %d timestamps on 2 tables", versions, stamps), result)
		})
	}
	for _, e := range []string{"spark", "deltalake"} {
		t.Run("engine-written/"+e, func(t *testing.T) {
			res, err := results[e], errs[e]
			if err != nil {
				record("engine-written", e, "-", "FAIL: engine did not run")
				t.Fatal(err)
			}
			if res.WriteError != "" {
				record("engine-written", e, "-", "FAIL: engine write failed")
				t.Fatalf("%s writes failed: %s", e, res.WriteError)
			}
			for _, w := range res.Writes {
				n, failed := compareEngineTable(ctx, t, e, w)
				feat := tableTraits(ctx, t, w)
				record("engine-written", e+" -> kappa: "+w.Name, fmt.Sprintf("%d versions (%s)", n, feat),
					passFail(failed == 0 && n > 0))
			}
			if len(res.Writes) == 0 {
				t.Errorf("%s wrote no tables", e)
			}
		})
	}
}

// compareEngineTable reads every version of a table an engine wrote with
// Kappa and compares with the engine's rows. It returns the versions
// checked and the number that differed.
func compareEngineTable(ctx context.Context, t *testing.T, engine string, w writtenTable) (int, int) {
	t.Helper()
	tbl, err := table.Open(ctx, w.Table)
	if err != nil {
		t.Errorf("%s/%s: kappa open: %v", engine, w.Name, err)
		return 0, 1
	}
	defer tbl.Close()
	failed := 0
	for _, v := range w.Versions {
		want, err := readLines(v.RowsFile)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := tbl.Snapshot(ctx, table.AtVersion(v.Version))
		if err != nil {
			t.Errorf("%s/%s: kappa snapshot %d: %v", engine, w.Name, v.Version, err)
			failed++
			continue
		}
		got, err := kappaRows(ctx, snap)
		if err != nil {
			t.Errorf("%s/%s: kappa read %d: %v", engine, w.Name, v.Version, err)
			failed++
			continue
		}
		missing, extra, nm, ne := diffMultisets(want, got, 3)
		if nm+ne > 0 {
			failed++
			t.Errorf("%s/%s version %d: kappa %d rows, %s %d rows; missing in kappa (%d) %v; extra in kappa (%d) %v",
				engine, w.Name, v.Version, len(got), engine, len(want), nm, missing, ne, extra)
		}
	}
	return len(w.Versions), failed
}

// tableTraits describes what an engine-written table exercises (checkpoints,
// deletion vectors, column mapping, removes) and checks that the tables
// meant to use deletion vectors and column mapping really do.
func tableTraits(ctx context.Context, t *testing.T, w writtenTable) string {
	t.Helper()
	var traits []string
	ents, _ := os.ReadDir(filepath.Join(w.Table, "_delta_log"))
	cps := 0
	for _, e := range ents {
		if strings.Contains(e.Name(), ".checkpoint.") && (strings.HasSuffix(e.Name(), ".parquet") || strings.HasSuffix(e.Name(), ".json")) {
			cps++
		}
	}
	traits = append(traits, fmt.Sprintf("%d checkpoints", cps))
	tbl, err := table.Open(ctx, w.Table)
	if err != nil {
		return strings.Join(traits, ", ")
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return strings.Join(traits, ", ")
	}
	dvs := 0
	for _, f := range snap.Files() {
		if f.DeletionVector != nil {
			dvs++
		}
	}
	if dvs > 0 {
		traits = append(traits, fmt.Sprintf("%d files with DVs", dvs))
	}
	cm := snap.Properties()["delta.columnMapping.mode"]
	if cm != "" && cm != "none" {
		traits = append(traits, "column mapping "+cm)
	}
	if len(snap.PartitionColumns()) > 0 {
		traits = append(traits, "partitioned")
	}
	if strings.HasSuffix(w.Name, "_dv") && dvs == 0 {
		t.Errorf("%s: no deletion vectors in the latest snapshot", w.Name)
	}
	if strings.HasSuffix(w.Name, "_cm") && cm != "name" {
		t.Errorf("%s: column mapping mode %q, want name", w.Name, cm)
	}
	if cps == 0 {
		t.Errorf("%s: no checkpoint written", w.Name)
	}
	return strings.Join(traits, ", ")
}
