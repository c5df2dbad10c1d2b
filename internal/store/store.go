package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"iter"
	"time"
)

// Sentinel errors. Implementations wrap them so callers can use errors.Is.
var (
	// ErrNotExist: the object does not exist. It wraps fs.ErrNotExist too.
	ErrNotExist error = &sentinel{msg: "object does not exist", base: fs.ErrNotExist}
	// ErrPreconditionFailed: PutIfAbsent found the key already present
	// (another writer won the race). It wraps fs.ErrExist too.
	ErrPreconditionFailed error = &sentinel{msg: "object already exists", base: fs.ErrExist}
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("store is closed")
	// ErrUnsupportedScheme: the URL scheme has no driver.
	ErrUnsupportedScheme = errors.New("unsupported storage URL scheme")
	// ErrInvalidKey: the key is not a clean relative '/'-separated path
	// (empty, absolute, "." or ".." segments, empty segments, NUL bytes).
	ErrInvalidKey = errors.New("invalid object key")
	// ErrTransient marks errors worth retrying (a network hiccup, a throttled
	// request, an S3 conditional-write conflict that outlived its retries, an
	// injected fault). Test with IsRetryable rather than errors.Is directly.
	ErrTransient = errors.New("transient storage error")
)

// sentinel is an error value that also matches a standard library error
// under errors.Is (ErrNotExist matches fs.ErrNotExist).
type sentinel struct {
	msg  string
	base error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.base }

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
	// PutStream writes (or overwrites) key with what write writes. The object
	// becomes visible, whole, only when write returns nil and the upload
	// completes; if write returns an error (or ctx ends) nothing is visible
	// (an existing object keeps its old content) and no temporary file or
	// partial upload is left. Memory does not depend on the object size
	// (FileStore: temp file + fsync + rename; BlobStore: blob.Writer,
	// aborted by cancelling its context). write must not keep w after it
	// returns; the error it returns is wrapped in the result.
	PutStream(ctx context.Context, key string, write func(w io.Writer) error) error
	// PutIfAbsent creates the object only if no object exists at key; exactly one
	// of several concurrent callers succeeds, the others get ErrPreconditionFailed.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// List yields the objects whose key starts with prefix and sorts strictly
	// after startAfter (when non-empty), in ascending lexical key order.
	// Listing is recursive (keys in nested "directories" are yielded too) and
	// the prefix may end mid-name ("_delta_log/0000000000000000001"). Callers
	// that want one level only filter by key.
	List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error]
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// URL is the root URL of the store, with credentials redacted.
	URL() string
	// Close releases resources. Later calls on the store fail with
	// ErrClosed (a Sub view's Close is a no-op: it does not own its store).
	Close() error
}
