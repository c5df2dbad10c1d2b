package store

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// Sentinel errors. Implementations wrap them so callers can use errors.Is.
var (
	// ErrNotExist: the object does not exist. It wraps fs.ErrNotExist too.
	ErrNotExist = errors.New("object does not exist")
	// ErrPreconditionFailed: PutIfAbsent found the key already present
	// (another writer won the race).
	ErrPreconditionFailed = errors.New("object already exists")
	// ErrUnsupportedScheme: the URL scheme has no driver.
	ErrUnsupportedScheme = errors.New("unsupported storage URL scheme")
)

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key     string // path relative to the store root, '/' separated
	Size    int64
	ModTime time.Time
}

// ReaderAt is a random-access view of one object (range requests on object
// stores, pread on local files).
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is the object store under one table root. Keys are '/'-separated
// paths relative to the root (e.g. "_delta_log/00000000000000000000.json").
// Every method that does I/O takes a context.
type Store interface {
	// Get reads the whole object. ErrNotExist when missing.
	Get(ctx context.Context, key string) ([]byte, error)
	// Open returns a random-access reader. ErrNotExist when missing.
	Open(ctx context.Context, key string) (ReaderAt, error)
	// Stat returns the object's info. ErrNotExist when missing.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Put writes (or overwrites) the object. Readers never see a partial object.
	Put(ctx context.Context, key string, data []byte) error
	// PutIfAbsent creates the object only if no object exists at key; exactly one
	// of several concurrent callers succeeds, the others get ErrPreconditionFailed.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// List yields the objects whose key starts with prefix and sorts strictly
	// after startAfter (when non-empty), in ascending lexical key order.
	// Listing is not recursive into "directories" only when the backend lacks
	// them: callers filter by key.
	List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error]
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// URL is the root URL of the store, with credentials redacted.
	URL() string
	// Close releases resources.
	Close() error
}
