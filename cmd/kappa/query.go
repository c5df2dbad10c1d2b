package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/txlog"
)

func queryCommand() *command {
	c := &command{
		name:    "query",
		args:    "[--format table|csv|json|jsonl] [--table NAME=URL]... 'SQL'",
		summary: "Run a SQL SELECT over a table, at any version or time.",
		help: `Runs one SELECT over one table. FROM takes delta.` + "`URL`" + ` or a NAME bound with
--table NAME=URL, optionally followed by VERSION AS OF n or TIMESTAMP AS OF '...':

  kappa query "SELECT kind, count(*) AS n FROM delta.` + "`/data/events`" + ` VERSION AS OF 12
               WHERE day >= DATE '2024-05-01' GROUP BY kind ORDER BY n DESC LIMIT 10"

Supported: WHERE (AND/OR/NOT, comparisons, IN, BETWEEN, IS [NOT] NULL, LIKE),
GROUP BY expressions/aliases/positions, HAVING, ORDER BY (ASC/DESC, NULLS
FIRST/LAST), LIMIT, DISTINCT; COUNT(*), COUNT(x), COUNT(DISTINCT x), SUM, MIN,
MAX, AVG, approx_count_distinct; CAST, COALESCE, CASE, date_trunc, to_date,
year/month/day/hour/minute, abs, round, lower/upper, length, concat/||.
Predicates on table columns prune partitions and skip files and row groups.

--format json prints an array of row objects, jsonl one object per line,
csv a header and rows, table aligned columns (the default).`,
		minArgs: 1, maxArgs: -1,
		fs: newFlagSet("query"),
	}
	format := formatFlag(c.fs, "table", "csv", "json", "jsonl")
	var tables listValue
	c.fs.Var(&tables, "table", "bind `NAME=URL` for use in FROM (repeatable)")
	c.run = func(ctx context.Context, e *env, args []string) error {
		var opts []reader.QueryOption
		for _, t := range tables {
			name, url, ok := strings.Cut(t, "=")
			if !ok || name == "" || url == "" {
				return usagef("--table %q: want NAME=URL", t)
			}
			opts = append(opts, reader.WithTable(name, url))
		}
		res, err := reader.Query(ctx, strings.Join(args, " "), opts...)
		if err != nil {
			return err
		}
		return writeResult(e.stdout, res, format.value)
	}
	return c
}

// writeResult prints a query result in one of the formats.
func writeResult(w io.Writer, res *reader.Result, format string) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		head := make([]string, len(res.Columns))
		for i, c := range res.Columns {
			head[i] = c.Name
		}
		if err := cw.Write(head); err != nil {
			return err
		}
		for _, r := range res.Rows {
			rec := make([]string, len(r))
			for i, v := range r {
				if v != nil {
					rec[i] = textValue(v, res.Columns[i].Type)
				}
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "json", "jsonl":
		var buf bytes.Buffer
		if format == "json" {
			buf.WriteString("[")
		}
		for ri, r := range res.Rows {
			if format == "json" {
				if ri > 0 {
					buf.WriteString(",")
				}
				buf.WriteString("\n  ")
			}
			buf.WriteString("{")
			for i, v := range r {
				if i > 0 {
					buf.WriteString(",")
				}
				k, _ := json.Marshal(res.Columns[i].Name)
				buf.Write(k)
				buf.WriteString(":")
				buf.WriteString(jsonValue(v, res.Columns[i].Type))
			}
			buf.WriteString("}")
			if format == "jsonl" {
				buf.WriteString("\n")
			}
		}
		if format == "json" {
			if len(res.Rows) > 0 {
				buf.WriteString("\n")
			}
			buf.WriteString("]\n")
		}
		_, err := w.Write(buf.Bytes())
		return err
	}
	// aligned table
	cells := make([][]string, len(res.Rows)+1)
	numeric := make([]bool, len(res.Columns))
	cells[0] = make([]string, len(res.Columns))
	for i, c := range res.Columns {
		cells[0][i] = c.Name
		switch t := c.Type.(type) {
		case *txlog.DecimalType:
			numeric[i] = true
		case *txlog.PrimitiveType:
			switch t.Name {
			case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong, txlog.TypeFloat, txlog.TypeDouble:
				numeric[i] = true
			}
		}
	}
	for ri, r := range res.Rows {
		row := make([]string, len(r))
		for i, v := range r {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = strings.ReplaceAll(textValue(v, res.Columns[i].Type), "\n", `\n`)
			}
		}
		cells[ri+1] = row
	}
	width := make([]int, len(res.Columns))
	for _, row := range cells {
		for i, s := range row {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	for ri, row := range cells {
		for i, s := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			switch {
			case numeric[i] && ri > 0:
				b.WriteString(pad + s)
			case i == len(row)-1:
				b.WriteString(s)
			default:
				b.WriteString(s + pad)
			}
		}
		b.WriteString("\n")
		if ri == 0 {
			for i := range row {
				if i > 0 {
					b.WriteString("  ")
				}
				b.WriteString(strings.Repeat("-", width[i]))
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "(%d row%s, version %d)\n", len(res.Rows), plural(len(res.Rows)), res.Version)
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func isDate(t txlog.DataType) bool {
	p, ok := t.(*txlog.PrimitiveType)
	return ok && p.Name == txlog.TypeDate
}

// textValue renders a non-null value for table and csv output.
func textValue(v any, t txlog.DataType) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case reader.Decimal:
		return x.String()
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		if isDate(t) {
			return x.UTC().Format("2006-01-02")
		}
		return x.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	}
	b, err := json.Marshal(nestedJSON(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// jsonValue renders a value as JSON (decimals as exact numbers, NaN and
// infinities as strings).
func jsonValue(v any, t txlog.DataType) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case reader.Decimal:
		return x.String()
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.Quote(formatFloat(x))
		}
		return formatFloat(x)
	case time.Time:
		return strconv.Quote(textValue(x, t))
	}
	b, err := json.Marshal(nestedJSON(v))
	if err != nil {
		return strconv.Quote(fmt.Sprint(v))
	}
	return string(b)
}

// nestedJSON converts nested query values to JSON-friendly values.
func nestedJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = nestedJSON(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = nestedJSON(e)
		}
		return out
	case []reader.MapEntry:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = map[string]any{"key": nestedJSON(e.Key), "value": nestedJSON(e.Value)}
		}
		return out
	case reader.Decimal:
		return json.Number(x.String())
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return formatFloat(x)
		}
	case float32:
		return nestedJSON(float64(x))
	}
	return v
}
