// Package store is Kappa's object-store layer: one small interface (Store)
// for the files under a table root, with context-aware Get, Open (random
// access), Stat, Put, PutStream (a streamed Put whose memory does not grow
// with the object), PutIfAbsent, List and Delete, and sentinel errors
// (ErrNotExist, ErrPreconditionFailed, ErrInvalidKey, ErrTransient,
// ErrClosed for a store used after Close) callers test with errors.Is, plus
// IsRetryable to classify failures.
//
// Open picks the backend from a URL:
//
//	/data/t, file:///data/t         FileStore (local files, our own publish)
//	mem://name[/root]               in-memory, shared per name in the process
//	s3://bucket[/root]?endpoint=..  S3 and S3-compatible servers
//	gs://bucket[/root]              Google Cloud Storage
//	azblob://container[/root]       Azure Blob Storage
//
// Object-store backends go through gocloud.dev/blob. Local files do not:
// gocloud's fileblob writes .attrs sidecars and its conditional write checks
// and then renames, so two writers can both "win" a version.
//
// # Atomic publish
//
// The Delta log is correct only if every version file is created by exactly
// one writer and no reader ever sees a partial file. Stores provide this with
// PutIfAbsent:
//
//   - FileStore writes the bytes to a temporary file in the target directory
//     (named TempPrefix + random hex, never listed), fsyncs it, then link(2)s
//     it to the final name. link fails with EEXIST when the name exists, an
//     atomic test-and-create in the kernel that holds across processes; the
//     loser gets ErrPreconditionFailed. The temporary name is removed on every
//     path, and the directory is fsynced so the new entry survives a crash.
//     Put (overwrite, e.g. _last_checkpoint, data files) and PutStream use
//     rename(2) instead, which atomically replaces the target.
//   - BlobStore.PutStream writes through a gocloud blob.Writer (on S3 a
//     multipart upload once the object outgrows one part); a failing write
//     cancels the writer's context before closing it, so the upload is
//     aborted and nothing becomes visible.
//   - S3 and Azure send If-None-Match: *, GCS a DoesNotExist precondition, all
//     through gocloud's WriterOptions.IfNotExist; a failed precondition maps
//     to ErrPreconditionFailed. S3 may answer 409 ConditionalRequestConflict
//     while another conditional write to the same key is in flight: the store
//     looks again (the key exists now -> ErrPreconditionFailed; still absent ->
//     retries the write with a short, context-aware backoff).
//   - mem:// is atomic within one process only.
//
// A retryable error from Put or PutIfAbsent is ambiguous: the object may have
// been written even though the response was lost. Callers that must know
// (the commit path) read the key back and compare.
//
// # Secrets
//
// Store URLs may carry credentials. Redact hides userinfo passwords and the
// values of secret-looking query parameters; every error and URL() a store
// returns uses the redacted form.
package store
