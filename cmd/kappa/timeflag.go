package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/table"
)

// timeLayouts are the accepted TIME formats, tried in order. Layouts without
// a zone are UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTime parses a TIME argument: RFC 3339 (2024-05-01T12:00:00Z, with an
// optional fraction and any offset) or YYYY-MM-DD[ HH:MM[:SS]] in UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 (2024-05-01T12:00:00Z) or YYYY-MM-DD[ HH:MM:SS] (UTC)", s)
}

// formatTime renders a commit time as RFC 3339 in UTC with milliseconds.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// timeValue is a flag holding a TIME.
type timeValue struct {
	t   time.Time
	set bool
}

func (v *timeValue) String() string {
	if !v.set {
		return ""
	}
	return formatTime(v.t)
}

func (v *timeValue) Set(s string) error {
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	v.t, v.set = t, true
	return nil
}

// versionValue is a flag holding a table version (>= 0).
type versionValue struct {
	v   int64
	set bool
}

func (v *versionValue) String() string {
	if !v.set {
		return ""
	}
	return strconv.FormatInt(v.v, 10)
}

func (v *versionValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid version %q: want a non-negative integer", s)
	}
	v.v, v.set = n, true
	return nil
}

// snapshotSelector holds --version and --as-of, which choose a snapshot.
type snapshotSelector struct {
	version versionValue
	asOf    timeValue
}

func (s *snapshotSelector) register(fs *flag.FlagSet) {
	fs.Var(&s.version, "version", "read table version `N` (default: the latest)")
	fs.Var(&s.asOf, "as-of", "read the latest version committed at or before `TIME` "+
		"(RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in UTC)")
}

func (s *snapshotSelector) validate() error {
	if s.version.set && s.asOf.set {
		return usagef("--version and --as-of are mutually exclusive")
	}
	return nil
}

// option is the table.SnapshotOption the flags select.
func (s *snapshotSelector) option() table.SnapshotOption {
	switch {
	case s.version.set:
		return table.AtVersion(s.version.v)
	case s.asOf.set:
		return table.AsOf(s.asOf.t)
	}
	return table.Latest()
}

// durationValue is a flag holding a duration; besides Go durations (36h,
// 90m) it accepts days ("7d", "1.5d").
type durationValue struct {
	d   time.Duration
	set bool
}

func (v *durationValue) String() string {
	if !v.set {
		return ""
	}
	return v.d.String()
}

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	v.d, v.set = d, true
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err == nil && f >= 0 && f < 1e5 {
			return time.Duration(f * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("invalid duration %q: use e.g. 7d, 168h or 30m", s)
}
