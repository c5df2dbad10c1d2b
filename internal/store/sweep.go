package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// TempSweeper is implemented by stores that publish writes through temporary
// objects which a writer killed mid-publish can leave behind (the file
// store). List never yields them, so only SweepTemp can remove them.
type TempSweeper interface {
	// SweepTemp removes the temporary objects older than olderThan anywhere
	// under the root (only lists them when dryRun) and returns their keys,
	// sorted. Temporary objects of writes still running are younger than any
	// sensible cutoff (a write lasts seconds; vacuum retention is days).
	SweepTemp(ctx context.Context, olderThan time.Time, dryRun bool) ([]string, error)
}

var _ TempSweeper = (*FileStore)(nil)

// SweepTemp implements TempSweeper for the file store: files named
// TempPrefix* older than olderThan.
func (s *FileStore) SweepTemp(ctx context.Context, olderThan time.Time, dryRun bool) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !info.ModTime().Before(olderThan) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		if !dryRun {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return keys, s.opErr("sweep temp files", "", err)
	}
	sort.Strings(keys)
	return keys, nil
}
