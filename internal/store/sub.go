package store

import (
	"context"
	"io"
	"iter"
	"strings"
)

// Sub returns a view of st rooted at prefix (a '/'-separated key path such as
// "tables/events"): key k of the view is key prefix+"/"+k of st. Closing the
// view does not close st.
func Sub(st Store, prefix string) Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return st
	}
	return &subStore{st: st, prefix: prefix + "/"}
}

type subStore struct {
	st     Store
	prefix string // ends in '/'
}

func (s *subStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, &OpError{Op: "get", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.Get(ctx, s.prefix+key)
}

func (s *subStore) Open(ctx context.Context, key string) (ReaderAt, error) {
	if err := ValidateKey(key); err != nil {
		return nil, &OpError{Op: "open", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.Open(ctx, s.prefix+key)
}

func (s *subStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, &OpError{Op: "stat", URL: s.URL(), Key: key, Err: err}
	}
	info, err := s.st.Stat(ctx, s.prefix+key)
	info.Key = strings.TrimPrefix(info.Key, s.prefix)
	return info, err
}

func (s *subStore) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return &OpError{Op: "put", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.Put(ctx, s.prefix+key, data)
}

func (s *subStore) PutStream(ctx context.Context, key string, write func(w io.Writer) error) error {
	if err := ValidateKey(key); err != nil {
		return &OpError{Op: "put", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.PutStream(ctx, s.prefix+key, write)
}

func (s *subStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return &OpError{Op: "put-if-absent", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.PutIfAbsent(ctx, s.prefix+key, data)
}

func (s *subStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		after := ""
		if startAfter != "" {
			after = s.prefix + startAfter
		}
		for info, err := range s.st.List(ctx, s.prefix+prefix, after) {
			info.Key = strings.TrimPrefix(info.Key, s.prefix)
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

func (s *subStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return &OpError{Op: "delete", URL: s.URL(), Key: key, Err: err}
	}
	return s.st.Delete(ctx, s.prefix+key)
}

func (s *subStore) URL() string {
	u := s.st.URL()
	root := strings.TrimSuffix(s.prefix, "/")
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return strings.TrimSuffix(u[:i], "/") + "/" + root + u[i:]
	}
	return strings.TrimSuffix(u, "/") + "/" + root
}

func (s *subStore) Close() error { return nil }
