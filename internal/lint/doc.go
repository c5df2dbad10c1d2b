// Package lint holds no code: its test enforces the project's import rules
// (the bans golangci-lint cannot express), in the style of pebble's
// internal/lint. Run it with `go test ./internal/lint/` (part of `make test`).
//
// # Rules
//
//   - Library code (every non-main package) must not import the standard
//     "log" package: it takes a *slog.Logger instead of logging globally.
//   - txlog is the log format only: it must not depend, even indirectly, on
//     table, reader or ingest.
//   - No library package may import anything under cmd/.
package lint
