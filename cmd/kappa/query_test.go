package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// runSub runs one of this file's commands the way run does (the command
// list in cli.go registers them).
func runSub(t *testing.T, c *command, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	var err error
	if c.rawRun != nil {
		err = c.rawRun(context.Background(), e, args)
	} else {
		var pos []string
		pos, err = parseInterspersed(c.fs, args)
		if err == nil {
			err = c.run(context.Background(), e, pos)
		}
	}
	if err != nil {
		t.Fatalf("%s %v: %v (stderr %s)", c.name, args, err, errb.String())
	}
	return out.String()
}

func TestQueryAndViewCommands(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "k", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true},
		{Name: "v", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
	}}
	tbl, err := table.Create(ctx, src, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Append(ctx, []map[string]any{{"k": "a", "v": int64(1)}, {"k": "b", "v": int64(2)}, {"k": "a", "v": nil}}); err != nil {
		t.Fatal(err)
	}
	out := runSub(t, queryCommand(), "--format", "json", "--table", "t="+src, "SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k ORDER BY k")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if len(rows) != 2 || rows[0]["k"] != "a" || rows[0]["n"] != 2.0 || rows[0]["s"] != 1.0 || rows[1]["s"] != 2.0 {
		t.Fatalf("rows %v", rows)
	}
	out = runSub(t, queryCommand(), "SELECT k, v FROM delta.`"+src+"` VERSION AS OF 1 ORDER BY v NULLS FIRST")
	if !strings.Contains(out, "k  v") || !strings.Contains(out, "a  NULL") || !strings.Contains(out, "(3 rows, version 1)") {
		t.Fatalf("table output:\n%s", out)
	}
	view := filepath.Join(root, "view")
	runSub(t, viewCommand(), "create", view, "--source", src, "--sql", "SELECT k, count(*) AS n FROM src GROUP BY k ORDER BY k", "--quiet")
	if _, err := tbl.Append(ctx, []map[string]any{{"k": "c", "v": int64(3)}}); err != nil {
		t.Fatal(err)
	}
	out = runSub(t, viewCommand(), "show", view, "--fresh", "--format", "csv")
	if out != "k,n\na,2\nb,1\nc,1\n" {
		t.Fatalf("fresh show:\n%s", out)
	}
	out = runSub(t, viewCommand(), "status", view)
	if !strings.Contains(out, "lag:             1 commit(s)") {
		t.Fatalf("status:\n%s", out)
	}
	out = runSub(t, viewCommand(), "refresh", view, "--quiet")
	if !strings.Contains(out, "incremental refresh: source versions 1 -> 2") {
		t.Fatalf("refresh:\n%s", out)
	}
	out = runSub(t, viewCommand(), "show", view, "--format", "jsonl")
	if out != "{\"k\":\"a\",\"n\":2}\n{\"k\":\"b\",\"n\":1}\n{\"k\":\"c\",\"n\":1}\n" {
		t.Fatalf("show:\n%s", out)
	}
}
