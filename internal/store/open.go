package store

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Open returns the store rooted at rawURL:
//
//   - a plain path or file:///abs/path: the local FileStore (atomic publish
//     by temp file + fsync + rename/link, no sidecar files);
//   - mem://NAME[/root]: an in-memory bucket shared by every Open of NAME in
//     the process (atomic within the process only);
//   - s3://bucket[/root]?region=..&endpoint=..&use_path_style=true&disable_https=true:
//     S3 or an S3-compatible server, credentials from the AWS environment;
//   - gs://bucket[/root] and azblob://container[/root]: through gocloud.dev/blob.
//
// Errors never contain credentials from rawURL (see Redact). An unknown
// scheme gives ErrUnsupportedScheme.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", Redact(rawURL), err)
	}
	if rawURL == "" {
		return nil, fmt.Errorf("open store: empty URL")
	}
	if isLocalPath(rawURL) {
		return NewFileStore(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the raw URL: do not let it leak.
		return nil, fmt.Errorf("open store %s: malformed URL", Redact(rawURL))
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("open store %s: file URLs must not name a host (file:///abs/path)", Redact(rawURL))
		}
		if len(u.Query()) > 0 {
			return nil, fmt.Errorf("open store %s: file URLs take no query parameters", Redact(rawURL))
		}
		if u.Path == "" {
			return nil, fmt.Errorf("open store %s: empty path", Redact(rawURL))
		}
		return NewFileStore(filepath.FromSlash(u.Path))
	case "mem", "s3", "gs", "azblob":
		u.Scheme = strings.ToLower(u.Scheme)
		return openBlob(ctx, u, rawURL)
	}
	return nil, fmt.Errorf("open store %s: %w %q", Redact(rawURL), ErrUnsupportedScheme, u.Scheme)
}

// isLocalPath: no "scheme://" and not a "scheme:" URL form; Windows drive
// letters ("C:\x") count as paths.
func isLocalPath(s string) bool {
	i := strings.Index(s, "://")
	if i < 0 {
		return true
	}
	// A '/' before "://" means the "://" is inside a path.
	return strings.ContainsAny(s[:i], `/\`)
}
