package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// TempPrefix starts the names of the temporary files the file store writes
// before publishing them. List never yields them; a crash can leave some
// behind, and they are safe to delete once older than any running write.
const TempPrefix = ".kappa-tmp-"

// FileStore is the local-filesystem store. Writes are atomic: the bytes go
// to a temporary file in the target directory, are fsynced, then published
// with rename(2) (Put, PutStream) or link(2) (PutIfAbsent, which fails when
// the name exists, so exactly one of any number of racing writers, in any
// number of processes, wins). A write whose context ends before the publish
// is not published. No sidecar files are written.
type FileStore struct {
	root   string // absolute, cleaned directory
	url    string
	closed atomic.Bool
}

// NewFileStore returns a store rooted at the directory dir (which need not
// exist yet: writes create it).
func NewFileStore(dir string) (*FileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store %q: %w", dir, err)
	}
	u := "file://" + filepath.ToSlash(abs)
	return &FileStore{root: abs, url: u}, nil
}

// Root returns the absolute directory of the store.
func (s *FileStore) Root() string { return s.root }

// URL implements Store.
func (s *FileStore) URL() string { return s.url }

// Close implements Store; the file store holds no resources.
func (s *FileStore) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *FileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func (s *FileStore) opErr(op, key string, err error) error {
	return &OpError{Op: op, URL: s.url, Key: key, Err: err}
}

// mapErr turns "missing" into ErrNotExist (keeping the cause).
func mapFileErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errIsDir),
		errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w (%w)", ErrNotExist, err)
	}
	return err
}

var errIsDir = errors.New("is a directory")

func (s *FileStore) begin(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return s.opErr(op, key, err)
	}
	if s.closed.Load() {
		return s.opErr(op, key, ErrClosed)
	}
	if err := ValidateKey(key); err != nil {
		return s.opErr(op, key, err)
	}
	return nil
}

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "get", key); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, s.opErr("get", key, mapFileErr(err))
	}
	return data, nil
}

// Open implements Store: the ReaderAt reads with pread(2).
func (s *FileStore) Open(ctx context.Context, key string) (ReaderAt, error) {
	if err := s.begin(ctx, "open", key); err != nil {
		return nil, err
	}
	f, err := s.openFile(key)
	if err != nil {
		return nil, s.opErr("open", key, err)
	}
	return f, nil
}

func (s *FileStore) openFile(key string) (*fileReader, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, mapFileErr(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, ErrNotExist
	}
	return &fileReader{f: f, size: fi.Size()}, nil
}

type fileReader struct {
	f    *os.File
	size int64
}

func (r *fileReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }
func (r *fileReader) Size() int64                             { return r.size }
func (r *fileReader) Close() error                            { return r.f.Close() }

// Stat implements Store.
func (s *FileStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := s.begin(ctx, "stat", key); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return ObjectInfo{}, s.opErr("stat", key, mapFileErr(err))
	}
	if fi.IsDir() {
		return ObjectInfo{}, s.opErr("stat", key, ErrNotExist)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Put implements Store: temp file, fsync, rename(2), fsync of the directory.
func (s *FileStore) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, "put", key, false, writeBytes(data))
}

// PutStream implements Store: like Put, with the bytes write writes going
// through a streamBuffer-sized buffer into the temporary file. Writes fail
// once ctx is done, and the file is published only if write returned nil
// and ctx is still live.
func (s *FileStore) PutStream(ctx context.Context, key string, write func(w io.Writer) error) error {
	return s.put(ctx, "put", key, false, func(f *os.File) error {
		bw := bufio.NewWriterSize(ctxWriter{ctx: ctx, w: f}, streamBuffer)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// PutIfAbsent implements Store: temp file, fsync, link(2) to the final name
// (EEXIST means another writer won: ErrPreconditionFailed), temp removed.
func (s *FileStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, "put-if-absent", key, true, writeBytes(data))
}

// streamBuffer is the write buffer of PutStream.
const streamBuffer = 256 << 10

func writeBytes(data []byte) func(*os.File) error {
	return func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}
}

// ctxWriter fails writes once ctx is done.
type ctxWriter struct {
	ctx context.Context //nolint:containedctx // io.Writer has no context parameter
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// put is every write of the file store: fill writes the content into a new
// temporary file in the target directory, which is fsynced and published
// under key by rename(2) (or link(2) when exclusive).
func (s *FileStore) put(ctx context.Context, op, key string, exclusive bool, fill func(*os.File) error) error {
	if err := s.begin(ctx, op, key); err != nil {
		return err
	}
	if err := s.publish(ctx, key, exclusive, fill); err != nil {
		return s.opErr(op, key, err)
	}
	return nil
}

func (s *FileStore) publish(ctx context.Context, key string, exclusive bool, fill func(*os.File) error) (err error) {
	final := s.path(key)
	dir := filepath.Dir(final)
	tmp, err := createTemp(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		tmp, err = createTemp(dir)
	}
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	closed := false
	// The temp name is always removed (also when fill panics): after
	// rename it no longer exists, after link it is the second name of the
	// published file, after a failure it is the only one.
	defer func() {
		if !closed {
			_ = tmp.Close()
		}
		if rmErr := os.Remove(tmpName); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("remove temp file: %w", rmErr)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return err
	}
	// A write whose context ended is not published.
	if err = ctx.Err(); err != nil {
		return err
	}
	if exclusive {
		if err = os.Link(tmpName, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrPreconditionFailed
			}
			return err
		}
	} else if err = os.Rename(tmpName, final); err != nil {
		if errors.Is(err, fs.ErrExist) { // final is a non-empty directory
			return fmt.Errorf("%w: %w", errIsDir, err)
		}
		return err
	}
	return syncDir(dir)
}

func createTemp(dir string) (*os.File, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, TempPrefix+hex.EncodeToString(b[:]))
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}

// syncDir makes a new directory entry durable. Filesystems that cannot
// fsync a directory (EINVAL) are tolerated.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// Delete implements Store. Missing objects are not an error. Directories
// left empty are kept.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete", key); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return s.opErr("delete", key, err)
	}
	if fi.IsDir() {
		return nil // not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.opErr("delete", key, err)
	}
	return nil
}

// List implements Store. It reads only the directories that can hold keys
// with the prefix (for "_delta_log/000..." only _delta_log), and within them
// skips whole subtrees and entries that sort at or before startAfter without
// a stat call.
func (s *FileStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(ObjectInfo{}, s.opErr("list", prefix, err))
			return
		}
		if s.closed.Load() {
			yield(ObjectInfo{}, s.opErr("list", prefix, ErrClosed))
			return
		}
		for _, p := range []string{prefix, startAfter} {
			if err := validatePrefix(p); err != nil {
				yield(ObjectInfo{}, s.opErr("list", prefix, err))
				return
			}
		}
		dirKey, namePrefix := "", prefix
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			dirKey, namePrefix = prefix[:i+1], prefix[i+1:]
		}
		l := lister{s: s, ctx: ctx, startAfter: startAfter, prefix: prefix, yield: yield}
		l.walk(dirKey, namePrefix)
	}
}

type lister struct {
	s          *FileStore
	ctx        context.Context
	prefix     string
	startAfter string
	yield      func(ObjectInfo, error) bool
	stopped    bool
}

type dirEntry struct {
	sortKey string // name, plus "/" for directories
	dir     bool
	entry   fs.DirEntry
}

// readDirBatch is how many directory entries walk reads at a time.
const readDirBatch = 1024

// walk lists the directory dirKey ("" or ending in '/'), restricted to names
// starting with namePrefix at this level only.
//
// The directory is read in batches, unsorted, and every entry that cannot
// be yielded (wrong prefix, temporary file, sorting at or before
// startAfter) is dropped right away: only the remaining entries are kept,
// sorted and stat'ed, so a listing that starts near the end of a large
// directory costs one pass over the names and no per-entry work for the
// skipped ones. Nothing is cached between calls.
func (l *lister) walk(dirKey, namePrefix string) {
	if err := l.ctx.Err(); err != nil {
		l.fail(err)
		return
	}
	// rest is the part of startAfter inside this directory; an entry is
	// needed if its key sorts after startAfter, or it is a directory whose
	// subtree contains startAfter.
	rest, filter := "", false
	if l.startAfter != "" {
		if !strings.HasPrefix(l.startAfter, dirKey) {
			if dirKey < l.startAfter {
				return // the whole directory sorts before startAfter
			}
		} else {
			rest, filter = l.startAfter[len(dirKey):], true
		}
	}
	d, err := os.Open(l.s.path(dirKey))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return // nothing there: an empty listing
		}
		l.fail(err)
		return
	}
	list, err := l.readDir(d, dirKey, namePrefix, rest, filter)
	d.Close()
	if err != nil {
		if !errors.Is(err, syscall.ENOTDIR) {
			l.fail(err)
		}
		return
	}
	// Sorting by name+"/" for directories gives the lexical order of the
	// full keys: every key under "d/" shares that prefix and no sibling
	// name does.
	slices.SortFunc(list, func(a, b dirEntry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range list {
		key := dirKey + e.sortKey
		if e.dir {
			l.walk(key, "")
		} else if key > l.startAfter {
			fi, err := e.entry.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				l.fail(err)
				return
			}
			if !l.yield(ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil) {
				l.stopped = true
			}
		}
		if l.stopped {
			return
		}
	}
}

// readDir reads the open directory d (key dirKey) in batches and keeps the
// entries walk needs (see walk), unsorted.
func (l *lister) readDir(d *os.File, dirKey, namePrefix, rest string, filter bool) ([]dirEntry, error) {
	var list []dirEntry
	for {
		ents, err := d.ReadDir(readDirBatch)
		for _, e := range ents {
			name := e.Name()
			if !strings.HasPrefix(name, namePrefix) || strings.HasPrefix(name, TempPrefix) {
				continue
			}
			// Skipped whatever its type: as a file (name < name+"/") or as
			// a directory not holding startAfter it sorts at or before it.
			if filter && skippedByName(name, rest) {
				continue
			}
			typ := e.Type()
			if typ&fs.ModeSymlink != 0 {
				fi, err := os.Stat(l.s.path(dirKey + name))
				if err != nil {
					continue // dangling link: not an object
				}
				typ = fi.Mode().Type()
			}
			switch {
			case typ.IsDir():
				if !filter || name+"/" > rest || strings.HasPrefix(rest, name+"/") {
					list = append(list, dirEntry{sortKey: name + "/", dir: true, entry: e})
				}
			case typ.IsRegular():
				if !filter || name > rest {
					list = append(list, dirEntry{sortKey: name, entry: e})
				}
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return list, nil
		}
		if err != nil {
			return nil, err
		}
		if err := l.ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// skippedByName reports whether name+"/" sorts at or before rest without
// being a prefix of it (without building name+"/").
func skippedByName(name, rest string) bool {
	if !strings.HasPrefix(rest, name) {
		return name < rest
	}
	return len(rest) > len(name) && rest[len(name)] > '/'
}

func (l *lister) fail(err error) {
	if !l.stopped {
		l.stopped = true
		l.yield(ObjectInfo{}, l.s.opErr("list", l.prefix, err))
	}
}
