package table

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the package. Errors from txlog (ErrTableNotFound,
// ErrVersionNotFound, ErrCorruptLog, ErrUnsupportedFeature) and from the store
// pass through wrapped, so callers can test for those too.
var (
	// ErrTableExists reports Create on a location that already holds a table.
	ErrTableExists = errors.New("delta table already exists")
	// ErrConflict reports a transaction that lost against a concurrent commit
	// it cannot be reconciled with. The error is a *ConflictError.
	ErrConflict = errors.New("concurrent transaction conflict")
	// ErrTooManyRetries reports a commit that kept losing put-if-absent races
	// (without a logical conflict) until its retry budget ran out.
	ErrTooManyRetries = errors.New("commit retries exhausted")
	// ErrCommitUnknown reports a commit whose outcome could not be determined:
	// the store failed on the write and on the read-back. The commit may or may
	// not have landed; check the table (e.g. the txn version of your appId).
	ErrCommitUnknown = errors.New("commit outcome unknown")
	// ErrInvalidArgument reports a bad argument or option (conflicting
	// snapshot options, an unknown partition column, a bad property value).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTransactionDone reports a second Commit of the same transaction.
	ErrTransactionDone = errors.New("transaction already committed")
	// ErrAppendOnly reports a transaction removing data from a table with
	// delta.appendOnly=true.
	ErrAppendOnly = errors.New("table is append-only")
)

// ConflictKind classifies a conflict with a concurrent commit.
type ConflictKind string

// Conflict kinds, after Spark's ConcurrentModificationException subclasses.
const (
	// ConflictProtocolChanged: the winner changed the protocol.
	ConflictProtocolChanged ConflictKind = "ProtocolChanged"
	// ConflictMetadataChanged: the winner changed the table metadata.
	ConflictMetadataChanged ConflictKind = "MetadataChanged"
	// ConflictTransaction: the winner wrote a txn for an appId this
	// transaction read or sets (ConcurrentTransactionException).
	ConflictTransaction ConflictKind = "ConcurrentTransaction"
	// ConflictDeleteRead: the winner removed a file this transaction read.
	ConflictDeleteRead ConflictKind = "ConcurrentDeleteRead"
	// ConflictDeleteDelete: the winner removed a file this transaction removes.
	ConflictDeleteDelete ConflictKind = "ConcurrentDeleteDelete"
	// ConflictAppend: the winner added data files this transaction's read of
	// the whole table depends on.
	ConflictAppend ConflictKind = "ConcurrentAppend"
)

// ConflictError describes why a transaction could not commit after losing
// the race for a version. errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Kind ConflictKind
	// ReadVersion is the snapshot version the transaction was built on.
	ReadVersion int64
	// WinningVersion is the concurrent commit that conflicts.
	WinningVersion int64
	// Detail names what collided (an appId, a file path).
	Detail string
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: read version %d, conflicting commit %d", ErrConflict, e.Kind, e.ReadVersion, e.WinningVersion)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }
