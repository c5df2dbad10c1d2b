package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// URLs
	_ "gocloud.dev/blob/gcsblob"   // gs:// URLs
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob" // s3:// URLs
	"gocloud.dev/gcerrors"
)

// BlobStore is a Store over a gocloud.dev/blob bucket, optionally rooted at
// a key prefix inside it. PutIfAbsent uses the backend's conditional write
// (S3 and Azure If-None-Match: *, GCS DoesNotExist precondition).
type BlobStore struct {
	bucket  *blob.Bucket
	root    string // "" or ending in '/'
	url     string // redacted
	secrets []string
	shared  bool // the bucket belongs to the mem registry: Close keeps it
	closed  atomic.Bool
	s3      bool
}

// conflictRetries bounds the internal retries of an S3 409
// ConditionalRequestConflict (a concurrent conditional write to the same key
// was in flight) when the key still does not exist afterwards.
const conflictRetries = 5

// memBuckets holds the mem:// buckets by name: every Open("mem://NAME") in a
// process sees the same objects.
var memBuckets = struct {
	sync.Mutex
	m map[string]*blob.Bucket
}{m: map[string]*blob.Bucket{}}

func memBucket(name string) *blob.Bucket {
	memBuckets.Lock()
	defer memBuckets.Unlock()
	b, ok := memBuckets.m[name]
	if !ok {
		b = memblob.OpenBucket(nil)
		memBuckets.m[name] = b
	}
	return b
}

// openBlob opens a mem://, s3://, gs:// or azblob:// URL. The URL path (after
// the bucket name) is the root prefix of the store inside the bucket.
func openBlob(ctx context.Context, u *url.URL, rawURL string) (*BlobStore, error) {
	red := Redact(rawURL)
	root := strings.Trim(u.Path, "/")
	if root != "" {
		if err := ValidateKey(root); err != nil {
			return nil, fmt.Errorf("open store %s: root path: %w", red, err)
		}
		root += "/"
	}
	s := &BlobStore{root: root, url: red, secrets: secretsOf(rawURL)}
	if u.Scheme == "mem" {
		if len(u.Query()) > 0 {
			return nil, fmt.Errorf("open store %s: mem:// takes no query parameters", red)
		}
		s.bucket = memBucket(u.Host)
		s.shared = true
		return s, nil
	}
	bu := *u
	bu.Path, bu.RawPath = "", ""
	b, err := blob.OpenBucket(ctx, bu.String())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", red, scrubError(err, s.secrets))
	}
	s.bucket = b
	s.s3 = u.Scheme == "s3"
	return s, nil
}

// URL implements Store.
func (s *BlobStore) URL() string { return s.url }

// Close implements Store. Closing a mem:// store keeps its objects for the
// next Open of the same name.
func (s *BlobStore) Close() error {
	if s.closed.Swap(true) || s.shared {
		return nil
	}
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.url, scrubError(err, s.secrets))
	}
	return nil
}

// Bucket returns the underlying gocloud bucket (keys there include the
// store's root prefix).
func (s *BlobStore) Bucket() *blob.Bucket { return s.bucket }

func (s *BlobStore) opErr(ctx context.Context, op, key string, err error) error {
	return &OpError{Op: op, URL: s.url, Key: key, Err: s.classify(ctx, err)}
}

// classify wraps err with the package sentinel its code means, and scrubs
// any secret from its message.
func (s *BlobStore) classify(ctx context.Context, err error) error {
	err = scrubError(err, s.secrets)
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	if IsRetryable(err) && !errors.Is(err, ErrTransient) {
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}

func (s *BlobStore) begin(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return &OpError{Op: op, URL: s.url, Key: key, Err: err}
	}
	if s.closed.Load() {
		return &OpError{Op: op, URL: s.url, Key: key, Err: ErrClosed}
	}
	if err := ValidateKey(key); err != nil {
		return &OpError{Op: op, URL: s.url, Key: key, Err: err}
	}
	return nil
}

// Get implements Store.
func (s *BlobStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "get", key); err != nil {
		return nil, err
	}
	data, err := s.bucket.ReadAll(ctx, s.root+key)
	if err != nil {
		return nil, s.opErr(ctx, "get", key, err)
	}
	return data, nil
}

// Stat implements Store.
func (s *BlobStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := s.begin(ctx, "stat", key); err != nil {
		return ObjectInfo{}, err
	}
	a, err := s.bucket.Attributes(ctx, s.root+key)
	if err != nil {
		return ObjectInfo{}, s.opErr(ctx, "stat", key, err)
	}
	return ObjectInfo{Key: key, Size: a.Size, ModTime: a.ModTime}, nil
}

// Open implements Store. The ReaderAt issues one range request per ReadAt,
// using ctx (so it is bound to the lifetime of ctx).
func (s *BlobStore) Open(ctx context.Context, key string) (ReaderAt, error) {
	if err := s.begin(ctx, "open", key); err != nil {
		return nil, err
	}
	a, err := s.bucket.Attributes(ctx, s.root+key)
	if err != nil {
		return nil, s.opErr(ctx, "open", key, err)
	}
	return &blobReader{ctx: ctx, s: s, key: key, size: a.Size}, nil
}

type blobReader struct {
	ctx  context.Context //nolint:containedctx // io.ReaderAt has no context parameter
	s    *BlobStore
	key  string
	size int64
}

func (r *blobReader) Size() int64  { return r.size }
func (r *blobReader) Close() error { return nil }

func (r *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, r.s.opErr(r.ctx, "read", r.key, fmt.Errorf("negative offset %d", off))
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n == 0 {
		return 0, nil
	}
	short := false
	if off+n > r.size {
		n = r.size - off
		short = true
	}
	rd, err := r.s.bucket.NewRangeReader(r.ctx, r.s.root+r.key, off, n, nil)
	if err != nil {
		return 0, r.s.opErr(r.ctx, "read", r.key, err)
	}
	defer rd.Close()
	got, err := io.ReadFull(rd, p[:n])
	if err != nil {
		if errors.Is(err, io.EOF) { // the object shrank: it was replaced
			err = io.ErrUnexpectedEOF
		}
		return got, r.s.opErr(r.ctx, "read", r.key, fmt.Errorf("range %d+%d: %w", off, n, err))
	}
	if short {
		return got, io.EOF
	}
	return got, nil
}

func writerOptions(ifNotExist bool) *blob.WriterOptions {
	return &blob.WriterOptions{
		ContentType:                 "application/octet-stream",
		DisableContentTypeDetection: true,
		IfNotExist:                  ifNotExist,
	}
}

// Put implements Store.
func (s *BlobStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.begin(ctx, "put", key); err != nil {
		return err
	}
	if err := s.bucket.WriteAll(ctx, s.root+key, data, writerOptions(false)); err != nil {
		return s.opErr(ctx, "put", key, err)
	}
	return nil
}

// PutStream implements Store. The bytes go to a blob.Writer (S3: a single
// PUT or a multipart upload with bounded part buffers) created with a child
// context of ctx. When write fails, the child context is cancelled before
// the writer is closed, so the upload is aborted rather than completed with
// what was written so far.
func (s *BlobStore) PutStream(ctx context.Context, key string, write func(w io.Writer) error) error {
	if err := s.begin(ctx, "put", key); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, s.root+key, writerOptions(false))
	if err != nil {
		return s.opErr(ctx, "put", key, err)
	}
	if err := write(w); err != nil {
		cancel() // abort: Close must not publish a partial object
		_ = w.Close()
		return s.opErr(ctx, "put", key, err)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		_ = w.Close()
		return s.opErr(ctx, "put", key, err)
	}
	if err := w.Close(); err != nil {
		return s.opErr(ctx, "put", key, err)
	}
	return nil
}

// PutIfAbsent implements Store. An S3 409 ConditionalRequestConflict (another
// conditional write to the key was in flight) is resolved here: if the key
// now exists the caller lost (ErrPreconditionFailed), otherwise the write is
// retried with a short backoff, up to conflictRetries times.
func (s *BlobStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	const op = "put-if-absent"
	if err := s.begin(ctx, op, key); err != nil {
		return err
	}
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := s.bucket.WriteAll(ctx, s.root+key, data, writerOptions(true))
		if err == nil {
			return nil
		}
		switch gcerrors.Code(err) {
		case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
			// The key exists. (Only here: gocloud reports a closed bucket
			// as FailedPrecondition too, which is not "already exists".)
			return s.opErr(ctx, op, key, fmt.Errorf("%w: %w", ErrPreconditionFailed, err))
		}
		if !isConditionalConflict(err) {
			return s.opErr(ctx, op, key, err)
		}
		exists, xerr := s.bucket.Exists(ctx, s.root+key)
		if xerr != nil {
			return s.opErr(ctx, op, key, fmt.Errorf("after conditional conflict: %w", xerr))
		}
		if exists {
			return s.opErr(ctx, op, key, fmt.Errorf("%w (after conditional conflict)", ErrPreconditionFailed))
		}
		if attempt >= conflictRetries {
			return s.opErr(ctx, op, key, fmt.Errorf("%w: conditional conflict persisted over %d attempts: %w",
				ErrTransient, attempt+1, err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.opErr(ctx, op, key, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// isConditionalConflict recognises S3's 409 ConditionalRequestConflict.
func isConditionalConflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict" {
		return true
	}
	var hs interface{ HTTPStatusCode() int }
	return errors.As(err, &hs) && hs.HTTPStatusCode() == 409
}

// Delete implements Store. Missing objects are not an error.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete", key); err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, s.root+key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return s.opErr(ctx, "delete", key, err)
	}
	return nil
}

// List implements Store. It lists without a delimiter (recursively); on S3
// the listing starts at startAfter (StartAfter), on GCS at StartOffset, on
// other backends earlier keys are skipped client-side.
func (s *BlobStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(ObjectInfo{}, &OpError{Op: "list", URL: s.url, Key: prefix, Err: err})
			return
		}
		if s.closed.Load() {
			yield(ObjectInfo{}, &OpError{Op: "list", URL: s.url, Key: prefix, Err: ErrClosed})
			return
		}
		for _, p := range []string{prefix, startAfter} {
			if err := validatePrefix(p); err != nil {
				yield(ObjectInfo{}, &OpError{Op: "list", URL: s.url, Key: prefix, Err: err})
				return
			}
		}
		full := s.root + prefix
		after := ""
		if startAfter != "" {
			after = s.root + startAfter
		}
		opts := &blob.ListOptions{Prefix: full}
		if after != "" && after >= full {
			opts.BeforeList = func(as func(any) bool) error {
				var in *s3.ListObjectsV2Input
				if as(&in) {
					if in.ContinuationToken == nil {
						in.StartAfter = aws.String(after)
					}
					return nil
				}
				var q *storage.Query
				if as(&q) {
					q.StartOffset = after // inclusive: the equal key is skipped below
				}
				return nil
			}
		}
		it := s.bucket.List(opts)
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(ObjectInfo{}, s.opErr(ctx, "list", prefix, err))
				return
			}
			if obj.IsDir || obj.Key <= after || !strings.HasPrefix(obj.Key, full) {
				continue
			}
			if !yield(ObjectInfo{Key: obj.Key[len(s.root):], Size: obj.Size, ModTime: obj.ModTime}, nil) {
				return
			}
		}
	}
}
