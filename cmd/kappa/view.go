package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/reader"
)

const viewUsage = `usage:
  kappa view create VIEW_URL --source URL --sql 'SELECT ... GROUP BY ...'
  kappa view refresh VIEW_URL [--full [--version N | --as-of TIME]]
  kappa view show VIEW_URL [--fresh] [--as-of TIME] [--format table|csv|json|jsonl]
  kappa view status VIEW_URL [--format text|json]

A batch view is a Delta table holding the partial aggregate state of an
aggregate query (GROUP BY and/or aggregates) over a source table, with the
definition in its metadata and the source version it covers in a txn.

create   creates the view table and computes it at the source's latest version.
refresh  aggregates only the source files added since the covered version and
         merges them into the stored state (one commit: a crashed or repeated
         refresh is harmless). It recomputes in full, and says why, when the
         source removed data or changed its schema in between. --full
         recomputes from the source at --version N / --as-of TIME (default:
         latest): replay with new logic.
show     prints the view from its stored state; --fresh merges the source files
         added since (exact up to the source's last commit, without writing);
         --as-of reads the view (and, with --fresh, the source) as of TIME.
status   prints the covered source version and how far behind the view is.
`

func viewCommand() *command {
	return &command{
		name:    "view",
		args:    "create|refresh|show|status VIEW_URL [flags]",
		summary: "Batch views: create, refresh (incremental or --full), show [--fresh], status.",
		rawRun:  runView,
	}
}

func runView(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, viewUsage)
		if len(args) == 0 {
			return usagef("missing subcommand: create, refresh, show or status")
		}
		return nil
	}
	sub := args[0]
	fs := newFlagSet("view " + sub)
	var (
		source  = fs.String("source", "", "source table `URL` (create)")
		sql     = fs.String("sql", "", "the view's aggregate `SQL` (create)")
		full    = fs.Bool("full", false, "recompute from a source snapshot (refresh)")
		fresh   = fs.Bool("fresh", false, "merge the source files added since the covered version (show)")
		workers = fs.Int("workers", 0, "aggregation workers (default: CPUs)")
		quiet   = fs.Bool("quiet", false, "no progress on stderr")
	)
	var sel snapshotSelector
	sel.register(fs)
	var format *choiceValue
	switch sub {
	case "show":
		format = formatFlag(fs, "table", "csv", "json", "jsonl")
	case "create", "refresh", "status":
		format = formatFlag(fs, "text", "json")
	default:
		return usagef("unknown view subcommand %q: want create, refresh, show or status", sub)
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, viewUsage)
		return nil
	}
	if err != nil {
		return usagef("%v", err)
	}
	if len(pos) != 1 {
		return usagef("view %s takes one VIEW_URL", sub)
	}
	if err := sel.validate(); err != nil {
		return err
	}
	viewURL := pos[0]
	var logger *slog.Logger
	if *quiet {
		logger = slog.New(slog.DiscardHandler)
	} else {
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	opts := reader.RefreshOptions{Logger: logger, Workers: *workers}
	var asOf *time.Time
	if sel.asOf.set {
		t := sel.asOf.t
		asOf = &t
	}
	switch sub {
	case "create":
		if *source == "" || *sql == "" {
			return usagef("view create needs --source URL and --sql 'SELECT ...'")
		}
		res, err := reader.CreateView(ctx, viewURL, *source, *sql, opts)
		if err != nil {
			return err
		}
		return printRefresh(e.stdout, viewURL, res, format.value)
	case "refresh":
		if (sel.version.set || sel.asOf.set) && !*full {
			return usagef("--version and --as-of need --full")
		}
		opts.Full = *full
		if sel.version.set {
			v := sel.version.v
			opts.Version = &v
		}
		opts.AsOf = asOf
		res, err := reader.RefreshView(ctx, viewURL, opts)
		if err != nil {
			return err
		}
		return printRefresh(e.stdout, viewURL, res, format.value)
	case "show":
		if sel.version.set {
			return usagef("view show takes --as-of, not --version")
		}
		res, err := reader.ShowView(ctx, viewURL, *fresh, asOf)
		if err != nil {
			return err
		}
		return writeResult(e.stdout, res, format.value)
	default: // status
		st, err := reader.ViewStatus(ctx, viewURL)
		if err != nil {
			return err
		}
		if format.value == "json" {
			out := map[string]any{
				"view": st.View, "source": st.Source, "sql": st.SQL, "viewVersion": st.ViewVersion,
				"coveredVersion": st.CoveredVersion, "sourceVersion": st.SourceVersion,
				"lagVersions": st.LagVersions, "lagSeconds": st.Lag.Seconds(), "groups": st.Groups,
				"sourceTime": formatTime(st.SourceTime),
			}
			if !st.CoveredTime.IsZero() {
				out["coveredTime"] = formatTime(st.CoveredTime)
			}
			return writeJSON(e.stdout, out)
		}
		return printStatus(e.stdout, st)
	}
}

func printRefresh(w io.Writer, view string, r *reader.RefreshResult, format string) error {
	if format == "json" {
		return writeJSON(w, map[string]any{
			"view": view, "mode": r.Mode, "reason": r.Reason, "fromVersion": r.FromVersion, "toVersion": r.ToVersion,
			"filesRead": r.FilesRead, "rowsRead": r.RowsRead, "groups": r.Groups, "viewVersion": r.ViewVersion,
		})
	}
	switch r.Mode {
	case "up-to-date":
		_, err := fmt.Fprintf(w, "view %s is up to date at source version %d\n", view, r.ToVersion)
		return err
	case "full":
		from := "nothing"
		if r.FromVersion >= 0 {
			from = fmt.Sprintf("source version %d", r.FromVersion)
		}
		_, err := fmt.Fprintf(w, "full recompute (%s): %s -> source version %d; read %d files, %d rows; %d groups; view version %d\n",
			r.Reason, from, r.ToVersion, r.FilesRead, r.RowsRead, r.Groups, r.ViewVersion)
		return err
	}
	_, err := fmt.Fprintf(w, "incremental refresh: source versions %d -> %d; read %d new files, %d rows; %d groups; view version %d\n",
		r.FromVersion, r.ToVersion, r.FilesRead, r.RowsRead, r.Groups, r.ViewVersion)
	return err
}

func printStatus(w io.Writer, st *reader.ViewInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "view:            %s (version %d, %d groups)\n", st.View, st.ViewVersion, st.Groups)
	fmt.Fprintf(&b, "source:          %s\n", st.Source)
	fmt.Fprintf(&b, "sql:             %s\n", strings.Join(strings.Fields(st.SQL), " "))
	if st.CoveredVersion < 0 {
		fmt.Fprintf(&b, "covered version: none (run kappa view refresh)\n")
	} else {
		fmt.Fprintf(&b, "covered version: %d (committed %s)\n", st.CoveredVersion, formatTime(st.CoveredTime))
	}
	fmt.Fprintf(&b, "source latest:   %d (committed %s)\n", st.SourceVersion, formatTime(st.SourceTime))
	fmt.Fprintf(&b, "lag:             %d commit(s), %s\n", st.LagVersions, st.Lag.Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}
