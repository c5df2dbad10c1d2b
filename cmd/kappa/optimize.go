package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
)

func optimizeCommand() *command {
	c := &command{
		name:    "optimize",
		args:    "URL [--target-size BYTES] [--min-size BYTES] [--where 'col=value,...'] [--dry-run] [--format text|json]",
		summary: "Compact small data files into larger ones (bin-packing).",
		help: `Rewrites the small files of each partition into files of about the target
size, like Delta's OPTIMIZE: one commit removes the old files and adds the
new ones with dataChange=false, so the rows and every older version stay
as they were (the old files are deleted only by a later vacuum). Files with
deletion vectors are rewritten without their deleted rows.

The target size defaults to the table's delta.targetFileSize, else 128MiB;
files smaller than --min-size (default 3/4 of the target) are compacted.
--where restricts the compaction to partitions with these values. A
concurrent commit that removes one of the files makes optimize fail with a
conflict: run it again.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("optimize"),
	}
	var target, minSize byteSizeValue
	c.fs.Var(&target, "target-size", "target `SIZE` of the written files (bytes, or with KiB/MiB/GiB/KB/MB/GB)")
	c.fs.Var(&minSize, "min-size", "compact files smaller than `SIZE` (default 3/4 of the target)")
	where := c.fs.String("where", "", "only partitions matching `col=value,...`")
	dryRun := c.fs.Bool("dry-run", false, "only show what would be compacted")
	format := formatFlag(c.fs, "text", "json")
	var filter map[string]string
	c.validate = func() error {
		var err error
		filter, err = parsePartitionFilter(*where)
		return err
	}
	c.run = func(ctx context.Context, e *env, args []string) error {
		t, err := table.Open(ctx, args[0])
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		progress, logger, finish := optimizeProgress(e.stderr)
		res, err := t.Optimize(ctx, table.OptimizeOptions{
			TargetFileSize: target.n, MinFileSize: minSize.n, PartitionFilter: filter,
			DryRun: *dryRun, ReadRows: reader.RewriteRows, Progress: progress, Logger: logger,
		})
		finish()
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(e.stdout, struct {
				DryRun          bool     `json:"dryRun"`
				ReadVersion     int64    `json:"readVersion"`
				Version         *int64   `json:"version"`
				Partitions      int      `json:"partitions"`
				FilesConsidered int      `json:"filesConsidered"`
				FilesRemoved    int      `json:"filesRemoved"`
				BytesRemoved    int64    `json:"bytesRemoved"`
				FilesAdded      int      `json:"filesAdded"`
				BytesAdded      int64    `json:"bytesAdded"`
				Removed         []string `json:"removed"`
			}{
				res.DryRun, res.ReadVersion, versionPtr(res.Version), res.Partitions, res.FilesConsidered,
				res.FilesRemoved, res.BytesRemoved, res.FilesAdded, res.BytesAdded, nonNil(res.Removed),
			})
		}
		switch {
		case res.DryRun:
			for _, f := range res.Removed {
				fmt.Fprintln(e.stdout, f)
			}
			fmt.Fprintf(e.stdout, "would compact %d files (%s) in %d partitions of version %d\n",
				res.FilesRemoved, formatBytes(res.BytesRemoved), res.Partitions, res.ReadVersion)
		case res.Version < 0:
			fmt.Fprintf(e.stdout, "nothing to compact at version %d (%d files considered)\n", res.ReadVersion, res.FilesConsidered)
		default:
			fmt.Fprintf(e.stdout, "compacted %d files (%s) into %d files (%s) in %d partitions; committed version %d\n",
				res.FilesRemoved, formatBytes(res.BytesRemoved), res.FilesAdded, formatBytes(res.BytesAdded), res.Partitions, res.Version)
		}
		return nil
	}
	return c
}

func versionPtr(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

// optimizeProgress reports progress on a terminal (one rewritten line on
// stderr) and through a text slog logger otherwise. finish ends the line.
func optimizeProgress(w io.Writer) (func(table.OptimizeProgress), *slog.Logger, func()) {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			printed := false
			progress := func(p table.OptimizeProgress) {
				printed = true
				fmt.Fprintf(w, "\roptimize: %d/%d bins, %d files (%s) -> %d files (%s)",
					p.BinsDone, p.Bins, p.FilesRemoved, formatBytes(p.BytesRemoved), p.FilesAdded, formatBytes(p.BytesAdded))
			}
			finish := func() {
				if printed {
					fmt.Fprintln(w)
				}
			}
			return progress, slog.New(slog.DiscardHandler), finish
		}
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	progress := func(p table.OptimizeProgress) {
		if !p.Done {
			logger.Info("optimize progress", "bins", p.Bins, "binsDone", p.BinsDone, "removedFiles", p.FilesRemoved,
				"removedBytes", p.BytesRemoved, "addedFiles", p.FilesAdded, "addedBytes", p.BytesAdded)
		}
	}
	return progress, logger, func() {}
}

// parsePartitionFilter parses "col=value,col2=value2".
func parsePartitionFilter(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--where %q: want col=value[,col=value...]", s)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("--where: column %q given twice", k)
		}
		m[k] = strings.Trim(strings.TrimSpace(v), "'\"")
	}
	return m, nil
}

// byteSizeValue is a flag taking a byte count with an optional unit.
type byteSizeValue struct{ n int64 }

func (b *byteSizeValue) String() string {
	if b == nil || b.n == 0 {
		return ""
	}
	return strconv.FormatInt(b.n, 10)
}

func (b *byteSizeValue) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	b.n = n
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10},
	{"mib", 1 << 20},
	{"gib", 1 << 30},
	{"tib", 1 << 40},
	{"kb", 1000},
	{"mb", 1000 * 1000},
	{"gb", 1000 * 1000 * 1000},
	{"tb", 1000 * 1000 * 1000 * 1000},
	{"k", 1 << 10},
	{"m", 1 << 20},
	{"g", 1 << 30},
	{"b", 1},
}

// parseByteSize parses "1048576", "128MiB", "1.5GB", "64k".
func parseByteSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) >= 1<<62 {
		return 0, fmt.Errorf("%q is not a positive size in bytes (e.g. 134217728, 128MiB, 1GB)", s)
	}
	return int64(f * float64(mult)), nil
}
