// Command kappa is the Kappa command line: it creates Delta tables, appends
// rows to them, and inspects them at any version or time.
//
//	kappa create URL --schema 'id long, ts timestamp, device string' [--partition-by COL,...] [--property K=V]...
//	kappa append URL FILE|- [--format jsonl]
//	kappa snapshot URL [--version N | --as-of TIME] [--format text|json]
//	kappa files URL [--version N | --as-of TIME] [--format text|json]
//	kappa history URL [--limit N] [--format text|json]
//	kappa checkpoint URL [--version N]
//	kappa vacuum URL [--retention DURATION] [--dry-run] [--force]
//	kappa ingest URL --brokers HOST:PORT --topic T [flags]   (see ingest.go)
//	kappa demo [--dir DIR]
//	kappa version
//
// Flags may come before or after the positional arguments, as --flag value or
// --flag=value. TIME is RFC 3339 or YYYY-MM-DD[ HH:MM:SS] in UTC. Errors are
// printed on stderr (with credentials in URLs redacted); the exit code is 1
// when a command fails and 2 for a bad command line.
//
// Every command is a function of (context, arguments, stdin, stdout, stderr)
// (see run), which the tests call directly and `kappa demo` replays.
package main
