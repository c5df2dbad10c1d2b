package main

import (
	"path/filepath"
	"strings"
	"testing"
)

type optimizeOutput struct {
	DryRun       bool     `json:"dryRun"`
	ReadVersion  int64    `json:"readVersion"`
	Version      *int64   `json:"version"`
	Partitions   int      `json:"partitions"`
	FilesRemoved int      `json:"filesRemoved"`
	FilesAdded   int      `json:"filesAdded"`
	Removed      []string `json:"removed"`
}

func TestOptimizeCommand(t *testing.T) {
	url := filepath.Join(t.TempDir(), "events")
	mustKappa(t, "", "create", url, "--schema", "id long, device string, temp double", "--partition-by", "device")
	for i := range 4 {
		rows := strings.Repeat(`{"id": 1, "device": "a", "temp": 1.5}`+"\n", i+1) + `{"id": 2, "device": "b", "temp": 2}` + "\n"
		mustKappa(t, rows, "append", url, "-")
	}
	records := func() (int, int64) {
		s := decodeJSON[snapshotInfo](t, mustKappa(t, "", "snapshot", url, "--format", "json"))
		if s.NumRecords == nil {
			t.Fatal("no numRecords")
		}
		return s.NumFiles, *s.NumRecords
	}
	files, rows := records()
	if files != 8 || rows != 14 {
		t.Fatalf("before: %d files, %d rows", files, rows)
	}

	dry := decodeJSON[optimizeOutput](t, mustKappa(t, "", "optimize", url, "--dry-run", "--where", "device=a", "--format", "json"))
	if !dry.DryRun || dry.Version != nil || dry.FilesRemoved != 4 || dry.Partitions != 1 || len(dry.Removed) != 4 {
		t.Errorf("dry run: %+v", dry)
	}
	if f, _ := records(); f != 8 {
		t.Errorf("dry run changed the table: %d files", f)
	}

	r := kappa(t, "", "optimize", url, "--target-size", "64MiB")
	if r.code != exitOK || !strings.Contains(r.stdout, "compacted 8 files") || !strings.Contains(r.stdout, "version 5") {
		t.Errorf("optimize: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "optimize done") {
		t.Errorf("no log on a non-terminal stderr: %q", r.stderr)
	}
	files, rows = records()
	if files != 2 || rows != 14 {
		t.Errorf("after: %d files, %d rows; want 2, 14", files, rows)
	}
	if out := mustKappa(t, "", "optimize", url); !strings.Contains(out, "nothing to compact") {
		t.Errorf("second optimize: %q", out)
	}

	for _, bad := range [][]string{
		{"optimize", url, "--target-size", "lots"},
		{"optimize", url, "--where", "=x"},
	} {
		if r := kappa(t, "", bad...); r.code != exitUsage {
			t.Errorf("%v: exit %d, stderr %q", bad, r.code, r.stderr)
		}
	}
	if r := kappa(t, "", "optimize", url, "--where", "temp=1"); r.code != exitError || !strings.Contains(r.stderr, "not a partition column") {
		t.Errorf("filter on a data column: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "128MiB": 128 << 20, "128mib": 128 << 20, "1GB": 1e9, "64k": 64 << 10, "1.5KiB": 1536, "10 MB": 10e6,
	} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5", "x", "12XB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", in)
		}
	}
}
