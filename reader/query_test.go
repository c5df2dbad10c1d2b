package reader

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// eventsSchema is the schema of the query test table.
func eventsSchema() *txlog.StructType {
	p := func(n string) *txlog.PrimitiveType { return &txlog.PrimitiveType{Name: n} }
	return &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: p(txlog.TypeLong), Nullable: false},
		{Name: "user", Type: p(txlog.TypeString), Nullable: true},
		{Name: "kind", Type: p(txlog.TypeString), Nullable: true},
		{Name: "amount", Type: p(txlog.TypeDouble), Nullable: true},
		{Name: "qty", Type: p(txlog.TypeInteger), Nullable: true},
		{Name: "price", Type: &txlog.DecimalType{Precision: 10, Scale: 2}, Nullable: true},
		{Name: "ts", Type: p(txlog.TypeTimestamp), Nullable: true},
		{Name: "day", Type: p(txlog.TypeDate), Nullable: true},
	}}
}

var kinds = []any{"click", "view", "buy", nil}

// genEvents makes n random events with ids from start. late makes event
// times fall in the past (late arrivals).
func genEvents(r *rand.Rand, start, n int, late bool) []map[string]any {
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]map[string]any, n)
	for i := range rows {
		hours := 24*5 + r.IntN(48)
		if late {
			hours = r.IntN(24 * 5)
		}
		ts := base.Add(time.Duration(hours)*time.Hour + time.Duration(r.IntN(3600))*time.Second)
		var amount any = math.Round(r.Float64()*10000) / 100
		if r.IntN(10) == 0 {
			amount = nil
		}
		var qty any = int64(r.IntN(20) - 5)
		if r.IntN(12) == 0 {
			qty = nil
		}
		var price any = fmt.Sprintf("%d.%02d", r.IntN(500), r.IntN(100))
		if r.IntN(15) == 0 {
			price = nil
		}
		var user any = fmt.Sprintf("u%02d", r.IntN(25))
		if r.IntN(30) == 0 {
			user = nil
		}
		day := time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC)
		rows[i] = map[string]any{
			"id": int64(start + i), "user": user, "kind": kinds[r.IntN(len(kinds))],
			"amount": amount, "qty": qty, "price": price, "ts": ts, "day": day,
		}
	}
	return rows
}

// eventsTable creates a table in dir with commits of random events;
// version v (1..commits) adds batch v. Returns the table.
func eventsTable(t testing.TB, dir string, seed uint64, commits, perCommit int) *table.Table {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Create(ctx, dir, eventsSchema(), table.WithPartitionColumns("day"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	id := 0
	for c := 0; c < commits; c++ {
		rows := genEvents(r, id, perCommit, c%3 == 2)
		id += perCommit
		if _, err := tbl.Append(ctx, rows, table.WithRowGroupRows(64)); err != nil {
			t.Fatal(err)
		}
	}
	return tbl
}

// refRows reads every row of a snapshot through the plain row API.
func refRows(t testing.TB, snap *table.Snapshot) []map[string]any {
	t.Helper()
	var out []map[string]any
	for r, err := range NewScan(snap).Rows(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		m := r.Map()
		// normalise to the query result types
		for k, v := range m {
			switch x := v.(type) {
			case int32:
				m[k] = int64(x)
			case int16:
				m[k] = int64(x)
			case int8:
				m[k] = int64(x)
			}
		}
		out = append(out, m)
	}
	return out
}

// canonRow renders a row for comparison (floats rounded to 9 significant
// digits: sums may be added in another order).
func canonRow(row []any) string {
	parts := make([]string, len(row))
	for i, v := range row {
		parts[i] = canonVal(v)
	}
	return strings.Join(parts, "|")
}

func canonVal(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return fmt.Sprintf("%.1f", x)
		}
		return fmt.Sprintf("%.9g", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case Decimal:
		f, _ := x.Rat().Float64()
		return canonVal(f)
	case int64:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func decf(v any) (float64, bool) {
	switch x := v.(type) {
	case Decimal:
		f, _ := x.Rat().Float64()
		return f, true
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

type refGroup struct {
	key  []any
	rows []map[string]any
}

// groupRows groups rows by key (in first-seen order).
func groupRows(rows []map[string]any, key func(map[string]any) []any) []*refGroup {
	idx := map[string]*refGroup{}
	var out []*refGroup
	for _, r := range rows {
		k := key(r)
		s := canonRow(k)
		g := idx[s]
		if g == nil {
			g = &refGroup{key: k}
			idx[s] = g
			out = append(out, g)
		}
		g.rows = append(g.rows, r)
	}
	return out
}

func refSum(rows []map[string]any, col string) any {
	var s float64
	n := 0
	for _, r := range rows {
		if f, ok := decf(r[col]); ok {
			s += f
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return s
}

func refCount(rows []map[string]any, col string) int64 {
	n := int64(0)
	for _, r := range rows {
		if r[col] != nil {
			n++
		}
	}
	return n
}

func refDistinct(rows []map[string]any, col string) int64 {
	seen := map[string]bool{}
	for _, r := range rows {
		if r[col] != nil {
			seen[canonVal(r[col])] = true
		}
	}
	return int64(len(seen))
}

func refMinMax(rows []map[string]any, col string, max bool) any {
	var best any
	for _, r := range rows {
		v := r[col]
		if v == nil {
			continue
		}
		if best == nil || (compareAny(v, best) > 0) == max && compareAny(v, best) != 0 {
			best = v
		}
	}
	return best
}

func compareAny(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case int64:
		y := b.(int64)
		return cmp3(x < y, x > y)
	case float64:
		c, _ := cmpFloat(x, b.(float64))
		return c
	case time.Time:
		return x.Compare(b.(time.Time))
	case Decimal:
		return x.Rat().Cmp(b.(Decimal).Rat())
	}
	return 0
}

func hourOf(v any) any {
	if v == nil {
		return nil
	}
	return v.(time.Time).Truncate(time.Hour)
}

type queryCase struct {
	name    string
	sql     string
	ordered bool
	ref     func(rows []map[string]any) [][]any
}

func queryCases() []queryCase {
	return []queryCase{
		{
			name: "group by string with aggregates",
			sql:  "SELECT user, COUNT(*) AS n, COUNT(amount), SUM(amount) s, MIN(amount), MAX(ts), AVG(qty) FROM events GROUP BY user",
			ref: func(rows []map[string]any) [][]any {
				var out [][]any
				for _, g := range groupRows(rows, func(r map[string]any) []any { return []any{r["user"]} }) {
					var avg any
					if n := refCount(g.rows, "qty"); n > 0 {
						s, _ := decf(refSum(g.rows, "qty"))
						avg = s / float64(n)
					}
					out = append(out, []any{
						g.key[0], int64(len(g.rows)), refCount(g.rows, "amount"), refSum(g.rows, "amount"),
						refMinMax(g.rows, "amount", false), refMinMax(g.rows, "ts", true), avg,
					})
				}
				return out
			},
		},
		{
			name: "where pushdown and hour buckets ordered",
			sql: `SELECT date_trunc('hour', ts) AS h, kind, count(*) AS n, sum(price) AS revenue
			      FROM events WHERE day >= DATE '2024-03-06' AND kind IN ('buy', 'view') AND amount > 10
			      GROUP BY 1, kind HAVING count(*) > 1 ORDER BY h DESC, kind NULLS LAST LIMIT 20`,
			ordered: true,
			ref: func(rows []map[string]any) [][]any {
				cut := time.Date(2024, 3, 6, 0, 0, 0, 0, time.UTC)
				var sel []map[string]any
				for _, r := range rows {
					a, _ := r["amount"].(float64)
					if d, ok := r["day"].(time.Time); ok && !d.Before(cut) && (r["kind"] == "buy" || r["kind"] == "view") && r["amount"] != nil && a > 10 {
						sel = append(sel, r)
					}
				}
				var out [][]any
				for _, g := range groupRows(sel, func(r map[string]any) []any { return []any{hourOf(r["ts"]), r["kind"]} }) {
					if len(g.rows) > 1 {
						out = append(out, []any{g.key[0], g.key[1], int64(len(g.rows)), refSum(g.rows, "price")})
					}
				}
				slices.SortStableFunc(out, func(a, b []any) int {
					if c := compareAny(b[0], a[0]); c != 0 {
						return c
					}
					return compareAny(a[1], b[1])
				})
				if len(out) > 20 {
					out = out[:20]
				}
				return out
			},
		},
		{
			name: "global aggregates with distinct",
			sql:  "SELECT count(*), count(DISTINCT user), approx_count_distinct(user), sum(qty), max(price), min(kind) FROM events WHERE user LIKE 'u1%' OR qty IS NULL",
			ref: func(rows []map[string]any) [][]any {
				var sel []map[string]any
				for _, r := range rows {
					u, _ := r["user"].(string)
					if strings.HasPrefix(u, "u1") || r["qty"] == nil {
						sel = append(sel, r)
					}
				}
				var sq any
				if s := refSum(sel, "qty"); s != nil {
					sq = int64(s.(float64))
				}
				d := refDistinct(sel, "user")
				return [][]any{{int64(len(sel)), d, d, sq, refMinMax(sel, "price", true), refMinMax(sel, "kind", false)}}
			},
		},
		{
			name:    "projection with scalar functions",
			sql:     "SELECT id, upper(coalesce(kind, 'none')) AS k, length(user), year(ts), month(ts), day(ts), hour(ts), to_date(ts) AS d, abs(qty - 3), round(amount / 3, 2), CAST(price AS double) * 2 AS p2, id % 7 FROM events WHERE id BETWEEN 5 AND 60 AND NOT (kind = 'view') ORDER BY id",
			ordered: true,
			ref: func(rows []map[string]any) [][]any {
				var out [][]any
				for _, r := range rows {
					id := r["id"].(int64)
					if id < 5 || id > 60 || r["kind"] == nil || r["kind"] == "view" {
						continue
					}
					k := "NONE"
					if s, ok := r["kind"].(string); ok {
						k = strings.ToUpper(s)
					}
					var ln any
					if u, ok := r["user"].(string); ok {
						ln = int64(len(u))
					}
					ts := r["ts"].(time.Time)
					var aq any
					if q, ok := r["qty"].(int64); ok {
						aq = q - 3
						if q-3 < 0 {
							aq = 3 - q
						}
					}
					var ra any
					if a, ok := r["amount"].(float64); ok {
						ra = roundFloat(a/3, 2, false)
					}
					var p2 any
					if p, ok := decf(r["price"]); ok && r["price"] != nil {
						p2 = p * 2
					}
					out = append(out, []any{
						id, k, ln, int64(ts.Year()), int64(ts.Month()), int64(ts.Day()), int64(ts.Hour()),
						time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC), aq, ra, p2, id % 7,
					})
				}
				slices.SortFunc(out, func(a, b []any) int { return compareAny(a[0], b[0]) })
				return out
			},
		},
		{
			name:    "order by aggregate with limit",
			sql:     "SELECT kind, sum(amount) AS total FROM events WHERE ts < TIMESTAMP '2024-03-07 12:00:00' GROUP BY kind ORDER BY total DESC NULLS LAST, kind LIMIT 3",
			ordered: true,
			ref: func(rows []map[string]any) [][]any {
				cut := time.Date(2024, 3, 7, 12, 0, 0, 0, time.UTC)
				var sel []map[string]any
				for _, r := range rows {
					if ts, ok := r["ts"].(time.Time); ok && ts.Before(cut) {
						sel = append(sel, r)
					}
				}
				var out [][]any
				for _, g := range groupRows(sel, func(r map[string]any) []any { return []any{r["kind"]} }) {
					out = append(out, []any{g.key[0], refSum(g.rows, "amount")})
				}
				slices.SortStableFunc(out, func(a, b []any) int {
					if a[1] == nil || b[1] == nil {
						return cmp3(a[1] != nil && b[1] == nil, a[1] == nil && b[1] != nil)
					}
					if c := compareAny(b[1], a[1]); c != 0 {
						return c
					}
					if a[0] == nil || b[0] == nil {
						return cmp3(a[0] == nil && b[0] != nil, a[0] != nil && b[0] == nil)
					}
					return compareAny(a[0], b[0])
				})
				if len(out) > 3 {
					out = out[:3]
				}
				return out
			},
		},
		{
			name: "select distinct and count of expression",
			sql:  "SELECT DISTINCT day, kind IS NULL AS nokind FROM events WHERE price >= 100.5",
			ref: func(rows []map[string]any) [][]any {
				var sel []map[string]any
				for _, r := range rows {
					if p, ok := decf(r["price"]); ok && r["price"] != nil && p >= 100.5 {
						sel = append(sel, r)
					}
				}
				var out [][]any
				for _, g := range groupRows(sel, func(r map[string]any) []any { return []any{r["day"], r["kind"] == nil} }) {
					out = append(out, g.key)
				}
				return out
			},
		},
	}
}

func checkResult(t *testing.T, c queryCase, res *Result, want [][]any) {
	t.Helper()
	got := make([]string, len(res.Rows))
	for i, r := range res.Rows {
		got[i] = canonRow(r)
	}
	exp := make([]string, len(want))
	for i, r := range want {
		exp[i] = canonRow(r)
	}
	if !c.ordered {
		slices.Sort(got)
		slices.Sort(exp)
	}
	if !slices.Equal(got, exp) {
		n := min(len(got), len(exp), 5)
		t.Errorf("%s: %d rows, want %d\n got[:%d]  %q\n want[:%d] %q", c.name, len(got), len(exp), n, got[:n], n, exp[:n])
		for i := range min(len(got), len(exp)) {
			if got[i] != exp[i] {
				t.Errorf("first difference at %d:\n got  %s\n want %s", i, got[i], exp[i])
				break
			}
		}
	}
}

func TestQueryAgainstRowEvaluator(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := eventsTable(t, dir, 1, 6, 300)
	hist, err := tbl.History(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	commitTime := map[int64]time.Time{}
	for _, h := range hist {
		commitTime[h.Version] = h.Timestamp
	}
	for _, v := range []int64{1, 3, 6} {
		snap, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatal(err)
		}
		rows := refRows(t, snap)
		for _, c := range queryCases() {
			// by version, through a bound name
			res, err := Query(ctx, c.sql+"", WithTable("events", dir))
			if v != 6 {
				sql := strings.Replace(c.sql, "FROM events", fmt.Sprintf("FROM delta.`%s` VERSION AS OF %d", dir, v), 1)
				res, err = Query(ctx, sql)
			}
			if err != nil {
				t.Fatalf("v%d %s: %v", v, c.name, err)
			}
			if res.Version != v {
				t.Fatalf("read version %d, want %d", res.Version, v)
			}
			checkResult(t, c, res, c.ref(rows))
			// by timestamp
			ts := commitTime[v].UTC().Format("2006-01-02 15:04:05.000000")
			sql := strings.Replace(c.sql, "FROM events", fmt.Sprintf("FROM events TIMESTAMP AS OF '%s'", ts), 1)
			res, err = Query(ctx, sql, WithTable("events", dir), WithQueryWorkers(1))
			if err != nil {
				t.Fatalf("as of %s: %v", ts, err)
			}
			if res.Version != v {
				t.Fatalf("TIMESTAMP AS OF %s read version %d, want %d", ts, res.Version, v)
			}
			checkResult(t, c, res, c.ref(rows))
		}
	}
}

func TestQueryPushdownPrunes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eventsTable(t, dir, 2, 4, 200)
	res, err := Query(ctx, "SELECT count(*) FROM delta.`"+dir+"` WHERE day = '2024-03-07' AND id >= 0")
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.FilesPruned == 0 {
		t.Errorf("no file pruned by the partition predicate: %+v", res.Stats)
	}
	all, err := Query(ctx, "SELECT count(*) FROM delta.`"+dir+"` WHERE to_date(ts) = DATE '2024-03-07'")
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows[0][0] != all.Rows[0][0] || res.Rows[0][0].(int64) == 0 {
		t.Errorf("pushed %v vs unpushed %v", res.Rows[0][0], all.Rows[0][0])
	}
}

func TestQueryGoldenTables(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		table, sql string
		want       []string
	}{
		// delta-rs simple_table: ids 5..9 live at the latest version
		{"delta-rs/simple_table", "SELECT count(*), min(id), max(id), sum(id) FROM t", []string{"3|5|9|21"}},
		{"delta-rs/simple_table", "SELECT id FROM t VERSION AS OF 0 ORDER BY id DESC LIMIT 2", []string{"4", "3"}},
	}
	for _, c := range cases {
		parts := strings.SplitN(c.table, "/", 2)
		dir := testutil.Testdata(t, parts[0], parts[1])
		res, err := Query(ctx, c.sql, WithTable("t", dir))
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		var got []string
		for _, r := range res.Rows {
			got = append(got, canonRow(r))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s on %s = %q, want %q", c.sql, c.table, got, c.want)
		}
	}
}

func TestSQLErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eventsTable(t, dir, 3, 1, 10)
	cases := []struct{ sql, want string }{
		{"SELECT id FROM events WHERE", "line 1:28: unexpected end of input"},
		{"SELECT id,\n  nope FROM events", "line 2:3: unknown column nope"},
		{"SELECT user, count(*) FROM events GROUP BY kind", "line 1:8: column user must appear in GROUP BY"},
		{"SELECT id FROM events WHERE sum(id) > 3", "line 1:29: aggregate function SUM is not allowed in WHERE"},
		{"SELECT id FROM other", "line 1:16: unknown table other"},
		{"SELECT id FROM events VERSION AS OF x", "line 1:37: VERSION AS OF needs a version number"},
		{"SELECT 'abc FROM events", "line 1:8: unterminated string literal"},
		{"SELECT id FROM events ORDER BY 3", "line 1:32: ORDER BY position 3 is not in the select list"},
		{"SELECT nosuch(id) FROM events", "line 1:8: unknown function nosuch"},
		{"SELECT id + 'x' FROM events WHERE id = 1 AND kind", "line 1:46: expected a boolean expression"},
		{"SELECT * FROM events a JOIN b", "line 1:24: joins are not supported"},
		{"SELECT count(sum(id)) FROM events", "line 1:14: aggregate functions cannot be nested"},
		{"SELECT id FROM events LIMIT -1", "line 1:29: LIMIT needs a non-negative integer"},
		{"SELECT date_trunc('fortnight', ts) FROM events", "line 1:19: date_trunc needs a unit literal"},
	}
	for _, c := range cases {
		_, err := Query(ctx, c.sql, WithTable("events", dir))
		if err == nil {
			t.Errorf("%q: no error", c.sql)
			continue
		}
		var se *SQLError
		if !errors.Is(err, ErrSQL) || !errors.As(err, &se) {
			t.Errorf("%q: error %v does not wrap ErrSQL", c.sql, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.sql, err, c.want)
		}
	}
	// A version out of reach is a table error, not a SQL error.
	_, err := Query(ctx, "SELECT id FROM events VERSION AS OF 99", WithTable("events", dir))
	if err == nil || !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Errorf("VERSION AS OF 99: %v, want ErrVersionNotFound", err)
	}
}

func FuzzParseSQL(f *testing.F) {
	for _, c := range queryCases() {
		f.Add(c.sql)
	}
	f.Add("SELECT a FROM delta.`s3://b/t` VERSION AS OF 3 WHERE x NOT BETWEEN 1 AND 2")
	f.Add("SELECT CASE WHEN a > 1 THEN 'x' ELSE NULL END FROM t TIMESTAMP AS OF '2024-01-01'")
	f.Add("select cast(a as decimal(10,2)), -b, c || 'd' from t as q where q.a is not null order by 1 desc nulls first")
	f.Fuzz(func(t *testing.T, sql string) {
		st, err := parseSQL(sql)
		if err != nil {
			var se *SQLError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SQLError", err)
			}
			return
		}
		// planning against a schema must not panic either
		_, _ = planQuery(st, eventsSchema())
		for _, it := range st.items {
			if it.expr != nil {
				_ = it.expr.String()
			}
		}
	})
}

// TestQueryCastBinaryToString: CAST(binary AS STRING) yields the bytes as
// text, not the binary column's base64 rendering.
func TestQueryCastBinaryToString(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	schema, err := txlog.ParseDDL("id long, payload binary")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := table.Create(ctx, dir, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Append(ctx, []map[string]any{{"id": int64(1), "payload": []byte(`{"a":1}`)}}); err != nil {
		t.Fatal(err)
	}
	res, err := Query(ctx, "SELECT CAST(payload AS STRING) AS s, payload FROM delta.`"+dir+"`")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Rows[0][0]; got != `{"a":1}` {
		t.Errorf("CAST(payload AS STRING) = %#v, want the text {\"a\":1}", got)
	}
	if res.Columns[0].Type == res.Columns[1].Type {
		t.Errorf("cast column keeps the binary type %v", res.Columns[1].Type)
	}
}
