package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// openSnapshot opens the table at url and loads the selected snapshot.
func openSnapshot(ctx context.Context, url string, opt table.SnapshotOption) (*table.Table, *table.Snapshot, error) {
	t, err := table.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	s, err := t.Snapshot(ctx, opt)
	if err != nil {
		_ = t.Close()
		return nil, nil, err
	}
	return t, s, nil
}

func snapshotCommand() *command {
	c := &command{
		name:    "snapshot",
		args:    "URL [--version N | --as-of TIME] [--format text|json]",
		summary: "Show a table snapshot: version, time, size, schema, protocol, properties, txns.",
		help: `Loads the latest snapshot, or the one at --version N, or the one a reader
would have seen at --as-of TIME (the latest commit at or before TIME; a TIME
after the latest commit gives the latest version, a TIME before the oldest
reconstructable commit is an error).

numRecords counts rows from the files' statistics minus deletion vectors; it
is unknown (json: null) when any file lacks a record count.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("snapshot"),
	}
	var sel snapshotSelector
	sel.register(c.fs)
	format := formatFlag(c.fs, "text", "json")
	c.validate = sel.validate
	c.run = func(ctx context.Context, e *env, args []string) error {
		t, s, err := openSnapshot(ctx, args[0], sel.option())
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		info, err := describeSnapshot(t, s)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(e.stdout, info)
		}
		return printSnapshot(e.stdout, s, info)
	}
	return c
}

// snapshotInfo is `kappa snapshot --format json`.
type snapshotInfo struct {
	URL              string            `json:"url"`
	TableID          string            `json:"tableId"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Version          int64             `json:"version"`
	Timestamp        string            `json:"timestamp"`
	NumFiles         int               `json:"numFiles"`
	SizeBytes        int64             `json:"sizeBytes"`
	NumRecords       *int64            `json:"numRecords"`
	PartitionColumns []string          `json:"partitionColumns"`
	Schema           json.RawMessage   `json:"schema"`
	Protocol         txlog.Protocol    `json:"protocol"`
	Properties       map[string]string `json:"properties"`
	Txns             map[string]int64  `json:"txns"`
}

func describeSnapshot(t *table.Table, s *table.Snapshot) (*snapshotInfo, error) {
	md := s.Metadata()
	// The schema as the log stores it (field order and metadata as written).
	schema := md.SchemaString
	if !json.Valid([]byte(schema)) {
		var err error
		if schema, err = txlog.MarshalSchema(s.Schema()); err != nil {
			return nil, fmt.Errorf("render schema: %w", err)
		}
	}
	info := &snapshotInfo{
		URL:              t.URL(),
		TableID:          md.ID,
		Name:             md.Name,
		Description:      md.Description,
		Version:          s.Version(),
		Timestamp:        formatTime(s.Timestamp()),
		PartitionColumns: nonNil(s.PartitionColumns()),
		Schema:           json.RawMessage(schema),
		Protocol:         s.Protocol(),
		Properties:       nonNilMap(s.Properties()),
		Txns:             nonNilMap(s.Txns()),
	}
	records, known := int64(0), true
	for _, a := range s.Files() {
		info.NumFiles++
		info.SizeBytes += a.Size
		if n, ok := fileRecords(a); ok {
			records += n
		} else {
			known = false
		}
	}
	if known {
		info.NumRecords = &records
	}
	return info, nil
}

// fileRecords is the number of live rows of a file from its stats (minus its
// deletion vector), or false when the stats do not say.
func fileRecords(a *txlog.Add) (int64, bool) {
	st, err := a.ParsedStats()
	if err != nil || st == nil || st.NumRecords == nil {
		return 0, false
	}
	n := *st.NumRecords
	if a.DeletionVector != nil {
		n -= a.DeletionVector.Cardinality
	}
	return n, true
}

func printSnapshot(w io.Writer, s *table.Snapshot, info *snapshotInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Table", info.URL)
	row("Table id", info.TableID)
	if info.Name != nil && *info.Name != "" {
		row("Name", *info.Name)
	}
	if info.Description != nil && *info.Description != "" {
		row("Description", *info.Description)
	}
	row("Version", strconv.FormatInt(info.Version, 10))
	row("Timestamp", info.Timestamp)
	row("Files", strconv.Itoa(info.NumFiles))
	row("Size", formatBytes(info.SizeBytes))
	if info.NumRecords != nil {
		row("Records", strconv.FormatInt(*info.NumRecords, 10))
	} else {
		row("Records", "unknown (some files have no record count in their stats)")
	}
	row("Partitioned by", orNone(strings.Join(info.PartitionColumns, ", ")))
	row("Protocol", formatProtocol(info.Protocol))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "Properties:")
	if len(info.Properties) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, k := range slices.Sorted(maps.Keys(info.Properties)) {
		fmt.Fprintf(w, "  %s = %s\n", k, info.Properties[k])
	}
	fmt.Fprintln(w, "Application transactions (appId -> version):")
	if len(info.Txns) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, k := range slices.Sorted(maps.Keys(info.Txns)) {
		fmt.Fprintf(w, "  %s -> %d\n", k, info.Txns[k])
	}
	fmt.Fprintln(w, "Schema:")
	printSchema(w, s.Schema())
	return nil
}

func formatProtocol(p txlog.Protocol) string {
	s := fmt.Sprintf("reader %d, writer %d", p.MinReaderVersion, p.MinWriterVersion)
	if len(p.ReaderFeatures) > 0 {
		s += "; reader features: " + strings.Join(p.ReaderFeatures, ", ")
	}
	if len(p.WriterFeatures) > 0 {
		s += "; writer features: " + strings.Join(p.WriterFeatures, ", ")
	}
	return s
}

// printSchema prints a schema as a tree, like Spark's printSchema.
func printSchema(w io.Writer, st *txlog.StructType) {
	fmt.Fprintln(w, "  root")
	printFields(w, st, "   |")
}

func printFields(w io.Writer, st *txlog.StructType, indent string) {
	for _, f := range st.Fields {
		fmt.Fprintf(w, "%s-- %s: %s (nullable = %t)\n", indent, f.Name, typeName(f.Type), f.Nullable)
		printNested(w, f.Type, indent+"    |")
	}
}

func printNested(w io.Writer, t txlog.DataType, indent string) {
	switch t := t.(type) {
	case *txlog.StructType:
		printFields(w, t, indent)
	case *txlog.ArrayType:
		fmt.Fprintf(w, "%s-- element: %s (containsNull = %t)\n", indent, typeName(t.ElementType), t.ContainsNull)
		printNested(w, t.ElementType, indent+"    |")
	case *txlog.MapType:
		fmt.Fprintf(w, "%s-- key: %s\n", indent, typeName(t.KeyType))
		printNested(w, t.KeyType, indent+"    |")
		fmt.Fprintf(w, "%s-- value: %s (valueContainsNull = %t)\n", indent, typeName(t.ValueType), t.ValueContainsNull)
		printNested(w, t.ValueType, indent+"    |")
	}
}

// typeName is a type's name in the schema tree: nested types by kind only.
func typeName(t txlog.DataType) string {
	switch t.(type) {
	case *txlog.StructType:
		return "struct"
	case *txlog.ArrayType:
		return "array"
	case *txlog.MapType:
		return "map"
	}
	return t.String()
}

func filesCommand() *command {
	c := &command{
		name:    "files",
		args:    "URL [--version N | --as-of TIME] [--format text|json]",
		summary: "List the live data files of a snapshot.",
		help: `Prints each live data file of the snapshot, ordered by path: its path relative
to the table root, size in bytes, partition values, record count from the
file statistics (minus deletion vectors; empty or null when unknown) and
modification time.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("files"),
	}
	var sel snapshotSelector
	sel.register(c.fs)
	format := formatFlag(c.fs, "text", "json")
	c.validate = sel.validate
	c.run = func(ctx context.Context, e *env, args []string) error {
		t, s, err := openSnapshot(ctx, args[0], sel.option())
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		files := s.Files()
		if format.value == "json" {
			out := make([]fileInfo, len(files))
			for i, a := range files {
				out[i] = describeFile(a)
			}
			return writeJSON(e.stdout, out)
		}
		partCols := s.PartitionColumns()
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "PATH\tSIZE\tRECORDS\tMODIFIED")
		if len(partCols) > 0 {
			fmt.Fprint(tw, "\tPARTITION")
		}
		fmt.Fprintln(tw)
		for _, a := range files {
			fi := describeFile(a)
			records := ""
			if fi.NumRecords != nil {
				records = strconv.FormatInt(*fi.NumRecords, 10)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s", fi.Path, fi.Size, records, fi.ModificationTime)
			if len(partCols) > 0 {
				fmt.Fprintf(tw, "\t%s", formatPartition(partCols, fi.PartitionValues))
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d files, %s, version %d\n", len(files), formatBytes(sumSizes(files)), s.Version())
		return nil
	}
	return c
}

// fileInfo is one element of `kappa files --format json`.
type fileInfo struct {
	Path             string             `json:"path"`
	Size             int64              `json:"size"`
	PartitionValues  map[string]*string `json:"partitionValues"`
	NumRecords       *int64             `json:"numRecords"`
	ModificationTime string             `json:"modificationTime"`
	DeletedRows      int64              `json:"deletedRows,omitempty"`
}

func describeFile(a *txlog.Add) fileInfo {
	fi := fileInfo{
		Path:             a.Path,
		Size:             a.Size,
		PartitionValues:  nonNilMap(a.PartitionValues),
		ModificationTime: formatTime(time.UnixMilli(a.ModificationTime)),
	}
	if n, ok := fileRecords(a); ok {
		fi.NumRecords = &n
	}
	if a.DeletionVector != nil {
		fi.DeletedRows = a.DeletionVector.Cardinality
	}
	return fi
}

func formatPartition(cols []string, pv map[string]*string) string {
	parts := make([]string, 0, len(cols))
	for _, c := range cols {
		v := "null"
		if p := pv[c]; p != nil {
			v = *p
		}
		parts = append(parts, c+"="+v)
	}
	return strings.Join(parts, "/")
}

func sumSizes(files []*txlog.Add) int64 {
	var n int64
	for _, a := range files {
		n += a.Size
	}
	return n
}

func historyCommand() *command {
	c := &command{
		name:    "history",
		args:    "URL [--limit N] [--format text|json]",
		summary: "Show the commits of a table, newest first.",
		help: `Prints the commitInfo of each version, newest first: version, commit time
(the in-commit timestamp when the table records them, else the commit file's
modification time), operation, whether it was a blind append, and the
operation parameters.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("history"),
	}
	limit := c.fs.Int("limit", 0, "show at most the newest `N` versions (0: all)")
	format := formatFlag(c.fs, "text", "json")
	c.validate = func() error {
		if *limit < 0 {
			return usagef("--limit must not be negative")
		}
		return nil
	}
	c.run = func(ctx context.Context, e *env, args []string) error {
		t, err := table.Open(ctx, args[0])
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		entries, err := t.History(ctx, *limit)
		if err != nil {
			return err
		}
		if format.value == "json" {
			out := make([]historyEntry, len(entries))
			for i, h := range entries {
				out[i] = historyEntry{
					Version:             h.Version,
					Timestamp:           formatTime(h.Timestamp),
					Operation:           h.Operation,
					OperationParameters: nonNilMap(h.OperationParameters),
					IsBlindAppend:       h.IsBlindAppend,
				}
			}
			return writeJSON(e.stdout, out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tTIMESTAMP\tOPERATION\tBLIND APPEND\tPARAMETERS")
		for _, h := range entries {
			blind := ""
			if h.IsBlindAppend != nil {
				blind = strconv.FormatBool(*h.IsBlindAppend)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Version, formatTime(h.Timestamp), orNone(h.Operation), blind, formatParams(h.OperationParameters))
		}
		return tw.Flush()
	}
	return c
}

// historyEntry is one element of `kappa history --format json`.
type historyEntry struct {
	Version             int64                      `json:"version"`
	Timestamp           string                     `json:"timestamp"`
	Operation           string                     `json:"operation"`
	OperationParameters map[string]json.RawMessage `json:"operationParameters"`
	IsBlindAppend       *bool                      `json:"isBlindAppend"`
}

// formatParams renders operation parameters as k=v, unquoting string values.
func formatParams(p map[string]json.RawMessage) string {
	parts := make([]string, 0, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v := string(p[k])
		var s string
		if json.Unmarshal(p[k], &s) == nil {
			v = s
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
