package txlog

import "errors"

// Sentinel errors of the package. Errors returned by txlog wrap one of them
// (with context) so callers can classify failures with errors.Is.
var (
	// ErrCorruptLog reports a transaction log that cannot be read as Delta:
	// a malformed commit line, an unparsable _last_checkpoint, a gap in the
	// commit versions.
	ErrCorruptLog = errors.New("corrupt delta log")
	// ErrTableNotFound reports a location with no _delta_log or no commits.
	ErrTableNotFound = errors.New("delta table not found")
	// ErrVersionNotFound reports a version (or time) outside the range of
	// versions the log can reconstruct.
	ErrVersionNotFound = errors.New("table version not found")
	// ErrUnsupportedFeature reports a protocol version or table feature this
	// package cannot read or write.
	ErrUnsupportedFeature = errors.New("unsupported delta table feature")
)
