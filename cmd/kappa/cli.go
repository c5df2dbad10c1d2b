package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kappa-lake/kappa/internal/store"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad command line
)

// env is what a command may touch besides its arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand: its flags, its positional arguments and what it does.
type command struct {
	name     string
	args     string // synopsis after the name, e.g. "URL [--version N | --as-of TIME]"
	summary  string // one line for the command list
	help     string // paragraphs printed by --help, before the flags
	minArgs  int    // positional arguments required
	maxArgs  int    // positional arguments allowed (-1: any number)
	fs       *flag.FlagSet
	validate func() error // checks flag combinations after parsing (usage errors)
	run      func(ctx context.Context, e *env, args []string) error
	// rawRun, when set, gets the arguments unparsed: the command parses its
	// own flags and prints its own help (kappa ingest).
	rawRun func(ctx context.Context, e *env, args []string) error
}

// usageError is a bad command line: exit code 2 and a hint to --help.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// commands returns every subcommand, freshly built (flag sets hold state).
func commands() []*command {
	return []*command{
		createCommand(),
		appendCommand(),
		snapshotCommand(),
		filesCommand(),
		historyCommand(),
		checkpointCommand(),
		vacuumCommand(),
		optimizeCommand(),
		queryCommand(),
		viewCommand(),
		ingestCommand(),
		demoCommand(),
		versionCommand(),
	}
}

// run is the whole program: it parses args (without the program name), runs
// the command and returns the exit code. Errors go to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 {
		printMainUsage(stderr, cmds)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			// `kappa help CMD` is `kappa CMD --help`.
			return run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		printMainUsage(stdout, cmds)
		return exitOK
	case "-v", "-version", "--version":
		name = "version"
	}
	var cmd *command
	for _, c := range cmds {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "kappa: unknown command %q\nRun 'kappa --help' for the list of commands.\n", name)
		return exitUsage
	}
	if cmd.rawRun != nil {
		if err := cmd.rawRun(ctx, e, args[1:]); err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "kappa %s: %s\nRun 'kappa %s --help' for usage.\n", cmd.name, ue.msg, cmd.name)
				return exitUsage
			}
			fmt.Fprintf(stderr, "kappa %s: %s\n", cmd.name, redactArgs(err.Error(), args[1:]))
			return exitError
		}
		return exitOK
	}
	pos, err := parseInterspersed(cmd.fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, cmd)
		return exitOK
	}
	if err == nil {
		err = checkArgs(cmd, pos)
	}
	if err == nil && cmd.validate != nil {
		err = cmd.validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "kappa %s: %s\nRun 'kappa %s --help' for usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	if err := cmd.run(ctx, e, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "kappa %s: %s\nRun 'kappa %s --help' for usage.\n", cmd.name, ue.msg, cmd.name)
			return exitUsage
		}
		fmt.Fprintf(stderr, "kappa %s: %s\n", cmd.name, redactArgs(err.Error(), pos))
		return exitError
	}
	return exitOK
}

// parseInterspersed parses flags anywhere among the positional arguments
// (Go's flag package stops at the first non-flag): `snapshot URL --version 3`
// works like `snapshot --version 3 URL`. A "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func checkArgs(cmd *command, pos []string) error {
	switch {
	case len(pos) < cmd.minArgs:
		return usagef("missing arguments: want %s", cmd.args)
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		return usagef("unexpected argument %q", pos[cmd.maxArgs])
	}
	return nil
}

// redactArgs hides credentials of table URLs quoted in an error message.
func redactArgs(msg string, args []string) string {
	for _, a := range args {
		if strings.Contains(a, "://") {
			if r := store.Redact(a); r != a {
				msg = strings.ReplaceAll(msg, a, r)
			}
		}
	}
	return msg
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints nothing itself (run prints usage).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func printMainUsage(w io.Writer, cmds []*command) {
	fmt.Fprint(w, `kappa: a Delta Lake table engine for the Kappa architecture.

Usage:
  kappa COMMAND [arguments] [flags]

Commands:
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Tables are addressed by URL: a local path or file:///abs/path, mem://name,
s3://bucket/prefix?region=..&endpoint=..&use_path_style=true, gs://bucket/prefix,
azblob://container/prefix.

Run 'kappa COMMAND --help' for a command's flags.
`)
}

func printCommandUsage(w io.Writer, c *command) {
	if c.fs == nil {
		return
	}
	fmt.Fprintf(w, "Usage: kappa %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.help, "\n"))
	}
	type row struct{ name, usage, def string }
	var rows []row
	width := 0
	c.fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		rows = append(rows, row{name, usage, def})
		width = max(width, len(name))
	})
	if len(rows) == 0 {
		return
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	fmt.Fprint(w, "\nFlags:\n")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s%s\n", width, r.name, r.usage, r.def)
	}
}

// formatFlag registers --format with the allowed values; the first is the default.
func formatFlag(fs *flag.FlagSet, allowed ...string) *choiceValue {
	v := &choiceValue{value: allowed[0], allowed: allowed}
	fs.Var(v, "format", "output `FORMAT`: "+strings.Join(allowed, " or "))
	return v
}

// choiceValue is a string flag restricted to a fixed set of values.
type choiceValue struct {
	value   string
	allowed []string
}

func (c *choiceValue) String() string { return c.value }

func (c *choiceValue) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.allowed, ", "))
}

// listValue collects a repeatable flag's values.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = append(*l, s)
	return nil
}
