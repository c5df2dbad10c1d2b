package table

import (
	"fmt"
	"log/slog"
	"time"
)

// DefaultMaxCommitRetries bounds how many times Commit retries after losing a
// put-if-absent race.
const DefaultMaxCommitRetries = 15

type tableConfig struct {
	logger     *slog.Logger
	maxRetries int
	now        func() time.Time
	noAutoCkpt bool
}

func defaultTableConfig() tableConfig {
	return tableConfig{
		logger:     slog.New(slog.DiscardHandler),
		maxRetries: DefaultMaxCommitRetries,
		now:        time.Now,
	}
}

// Option configures a Table (Open, OpenStore, and Create).
type Option func(*tableConfig)

func (o Option) applyCreate(c *createConfig) { o(&c.table) }

// WithLogger sets the logger for background work that must not fail a call
// (automatic checkpoints, cleanup) and for retry diagnostics. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *tableConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMaxCommitRetries bounds the retries of a commit that lost a race
// (default DefaultMaxCommitRetries). n < 0 is treated as 0.
func WithMaxCommitRetries(n int) Option {
	return func(c *tableConfig) { c.maxRetries = max(n, 0) }
}

// WithClock replaces time.Now (commit timestamps, retention cutoffs). For
// tests.
func WithClock(now func() time.Time) Option {
	return func(c *tableConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// WithoutAutoCheckpoint disables the checkpoint written after a commit whose
// version is a multiple of delta.checkpointInterval.
func WithoutAutoCheckpoint() Option {
	return func(c *tableConfig) { c.noAutoCkpt = true }
}

// CreateOption configures Create. Every Option is also a CreateOption.
type CreateOption interface{ applyCreate(*createConfig) }

type createConfig struct {
	table      tableConfig
	partition  []string
	props      map[string]string
	name, desc *string
	noICT      bool
	extraFeats []string
}

type createOptionFunc func(*createConfig)

func (f createOptionFunc) applyCreate(c *createConfig) { f(c) }

// WithPartitionColumns sets the partition columns (top-level primitive
// columns of the schema, in order).
func WithPartitionColumns(cols ...string) CreateOption {
	return createOptionFunc(func(c *createConfig) { c.partition = append([]string(nil), cols...) })
}

// WithProperties adds table properties (metaData.configuration). Known keys
// are validated.
func WithProperties(props map[string]string) CreateOption {
	return createOptionFunc(func(c *createConfig) {
		if c.props == nil {
			c.props = map[string]string{}
		}
		for k, v := range props {
			c.props[k] = v
		}
	})
}

// WithName sets metaData.name.
func WithName(name string) CreateOption {
	return createOptionFunc(func(c *createConfig) { c.name = &name })
}

// WithDescription sets metaData.description.
func WithDescription(desc string) CreateOption {
	return createOptionFunc(func(c *createConfig) { c.desc = &desc })
}

// WithoutInCommitTimestamps creates the table without in-commit timestamps
// (commit times are then the commit files' modification times, which a copy
// of the table does not preserve).
func WithoutInCommitTimestamps() CreateOption {
	return createOptionFunc(func(c *createConfig) { c.noICT = true })
}

// WithTableFeatures adds table features to the new table's protocol (beyond
// the ones its schema and properties imply), e.g. "domainMetadata".
func WithTableFeatures(features ...string) CreateOption {
	return createOptionFunc(func(c *createConfig) { c.extraFeats = append(c.extraFeats, features...) })
}

// SnapshotOption selects which version Table.Snapshot loads, and how much
// of it.
type SnapshotOption func(*snapshotSpec)

type snapshotSpec struct {
	version *int64
	asOf    *time.Time
	n       int
	noFiles bool
}

// WithoutFiles loads the snapshot without its file list: only the protocol,
// metadata, application transaction versions and metadata domains, which is
// all a writer of blind appends needs (see Snapshot.NewTransaction). Its
// memory and load time do not grow with the number of files in the table:
// the file actions of the checkpoint are not read at all and those of the
// commits after it are skipped. Files, NumFiles and Tombstones must not be
// called on such a snapshot (they panic); FileListLoaded reports the mode.
func WithoutFiles() SnapshotOption {
	return func(s *snapshotSpec) { s.noFiles = true }
}

// Latest selects the newest version (the default).
func Latest() SnapshotOption { return func(*snapshotSpec) {} }

// AtVersion selects version v. A version the log cannot reconstruct is an
// error wrapping txlog.ErrVersionNotFound.
func AtVersion(v int64) SnapshotOption {
	return func(s *snapshotSpec) { s.version = &v; s.n++ }
}

// AsOf selects the latest version committed at or before t (see the package
// documentation for the commit time rules).
func AsOf(t time.Time) SnapshotOption {
	return func(s *snapshotSpec) { s.asOf = &t; s.n++ }
}

func buildSnapshotSpec(opts []SnapshotOption) (snapshotSpec, error) {
	var s snapshotSpec
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	if s.n > 1 {
		return s, fmt.Errorf("%w: conflicting snapshot options: choose one of AtVersion and AsOf", ErrInvalidArgument)
	}
	if s.version != nil && *s.version < 0 {
		return s, fmt.Errorf("%w: negative version %d", ErrInvalidArgument, *s.version)
	}
	return s, nil
}
