package table

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Table property keys this package understands (Spark's names).
const (
	PropCheckpointInterval           = "delta.checkpointInterval"
	PropLogRetentionDuration         = "delta.logRetentionDuration"
	PropDeletedFileRetentionDuration = "delta.deletedFileRetentionDuration"
	PropCheckpointRetentionDuration  = "delta.checkpointRetentionDuration"
	PropEnableExpiredLogCleanup      = "delta.enableExpiredLogCleanup"
	PropAppendOnly                   = "delta.appendOnly"
	PropSetTransactionRetention      = "delta.setTransactionRetentionDuration"
	PropEnableInCommitTimestamps     = "delta.enableInCommitTimestamps"
	PropICTEnablementVersion         = "delta.inCommitTimestampEnablementVersion"
	PropICTEnablementTimestamp       = "delta.inCommitTimestampEnablementTimestamp"
	PropEnableChangeDataFeed         = "delta.enableChangeDataFeed"
	PropEnableDeletionVectors        = "delta.enableDeletionVectors"
	PropColumnMappingMode            = "delta.columnMapping.mode"
	// PropConstraintPrefix starts the keys of CHECK constraints.
	PropConstraintPrefix = "delta.constraints."
)

// Spark's defaults for the properties above.
const (
	DefaultCheckpointInterval           = 10
	DefaultLogRetentionDuration         = 30 * 24 * time.Hour
	DefaultDeletedFileRetentionDuration = 7 * 24 * time.Hour
	DefaultCheckpointRetentionDuration  = 2 * 24 * time.Hour
)

// Config is the typed view of a table's properties (metaData.configuration),
// with Spark's defaults for missing or unparsable values.
type Config struct {
	CheckpointInterval           int
	LogRetentionDuration         time.Duration
	DeletedFileRetentionDuration time.Duration
	CheckpointRetentionDuration  time.Duration
	EnableExpiredLogCleanup      bool
	AppendOnly                   bool
	// SetTransactionRetention, when > 0, expires txn entries whose
	// lastUpdated is older than now minus this duration.
	SetTransactionRetention time.Duration
	// InCommitTimestamps reports delta.enableInCommitTimestamps=true.
	InCommitTimestamps bool
	// ICTEnablementVersion is the first version whose commit time is its
	// in-commit timestamp (0 when enabled at creation; -1 when disabled).
	ICTEnablementVersion int64
}

// ParseConfig reads the properties this package understands. Invalid values
// of known keys are reported as an error wrapping ErrInvalidArgument; the
// returned Config then still holds defaults for them, so readers may ignore
// the error.
func ParseConfig(props map[string]string) (Config, error) {
	c := Config{
		CheckpointInterval:           DefaultCheckpointInterval,
		LogRetentionDuration:         DefaultLogRetentionDuration,
		DeletedFileRetentionDuration: DefaultDeletedFileRetentionDuration,
		CheckpointRetentionDuration:  DefaultCheckpointRetentionDuration,
		EnableExpiredLogCleanup:      true,
		ICTEnablementVersion:         -1,
	}
	var errs []string
	bad := func(key, val string, err error) {
		errs = append(errs, fmt.Sprintf("%s=%q: %v", key, val, err))
	}
	if v, ok := props[PropCheckpointInterval]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err == nil && n <= 0 {
			err = fmt.Errorf("must be positive")
		}
		if err != nil {
			bad(PropCheckpointInterval, v, err)
		} else {
			c.CheckpointInterval = n
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{
		{PropLogRetentionDuration, &c.LogRetentionDuration},
		{PropDeletedFileRetentionDuration, &c.DeletedFileRetentionDuration},
		{PropCheckpointRetentionDuration, &c.CheckpointRetentionDuration},
		{PropSetTransactionRetention, &c.SetTransactionRetention},
	} {
		if v, ok := props[d.key]; ok {
			dur, err := ParseInterval(v)
			if err != nil {
				bad(d.key, v, err)
				continue
			}
			*d.dst = dur
		}
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{
		{PropEnableExpiredLogCleanup, &c.EnableExpiredLogCleanup},
		{PropAppendOnly, &c.AppendOnly},
		{PropEnableInCommitTimestamps, &c.InCommitTimestamps},
	} {
		if v, ok := props[b.key]; ok {
			x, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				bad(b.key, v, err)
				continue
			}
			*b.dst = x
		}
	}
	if c.InCommitTimestamps {
		c.ICTEnablementVersion = 0
		if v, ok := props[PropICTEnablementVersion]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil && n < 0 {
				err = fmt.Errorf("must not be negative")
			}
			if err != nil {
				bad(PropICTEnablementVersion, v, err)
			} else {
				c.ICTEnablementVersion = n
			}
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: table properties: %s", ErrInvalidArgument, strings.Join(errs, "; "))
	}
	return c, nil
}

// ictAt reports whether the commit time of version v is its in-commit
// timestamp.
func (c Config) ictAt(v int64) bool {
	return c.InCommitTimestamps && c.ICTEnablementVersion >= 0 && v >= c.ICTEnablementVersion
}

// ParseInterval parses a Delta interval property value such as
// "interval 30 days", "interval 1 day 12 hours", "interval 168 hours" or
// "1 week". Units: nanosecond(s), microsecond(s), millisecond(s), second(s),
// minute(s), hour(s), day(s), week(s) (case-insensitive). A Go duration
// ("168h") is accepted too. Months and years are refused: they have no fixed
// length.
func ParseInterval(s string) (time.Duration, error) {
	f := strings.Fields(strings.ToLower(strings.TrimSpace(s)))
	if len(f) > 0 && f[0] == "interval" {
		f = f[1:]
	}
	if len(f) == 1 {
		if d, err := time.ParseDuration(f[0]); err == nil {
			return d, nil
		}
	}
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, fmt.Errorf("%w: interval %q: want \"interval <n> <unit>\"", ErrInvalidArgument, s)
	}
	var total time.Duration
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: interval %q: bad number %q", ErrInvalidArgument, s, f[i])
		}
		var unit time.Duration
		switch strings.TrimSuffix(f[i+1], "s") {
		case "nanosecond":
			unit = time.Nanosecond
		case "microsecond":
			unit = time.Microsecond
		case "millisecond":
			unit = time.Millisecond
		case "second":
			unit = time.Second
		case "minute":
			unit = time.Minute
		case "hour":
			unit = time.Hour
		case "day":
			unit = 24 * time.Hour
		case "week":
			unit = 7 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("%w: interval %q: unsupported unit %q", ErrInvalidArgument, s, f[i+1])
		}
		if n > int64((1<<63-1)/unit) {
			return 0, fmt.Errorf("%w: interval %q: too large", ErrInvalidArgument, s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}
