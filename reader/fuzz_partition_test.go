package reader

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/txlog"
)

// fixtureAdds returns the add actions of the fixture commits (when the
// shared fixtures are present), to seed the fuzzers with real values.
func fixtureAdds(f *testing.F) []*txlog.Add {
	f.Helper()
	root := os.Getenv("KAPPA_TESTDATA")
	if root == "" {
		root = filepath.Join(testutil.RepoRoot(), "..", "shared", "testdata")
	}
	var out []*txlog.Add
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "_delta_log" || !strings.HasSuffix(p, ".json") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || len(data) > 1<<20 {
			return nil
		}
		acts, err := txlog.ParseCommit(data)
		if err != nil {
			return nil
		}
		for _, a := range acts {
			if a.Add != nil {
				out = append(out, a.Add)
			}
		}
		return nil
	})
	return out
}

// partitionFuzzTypes are the column types partition values are parsed as;
// the fuzzer picks one with its first argument.
var partitionFuzzTypes = []txlog.DataType{
	&txlog.PrimitiveType{Name: txlog.TypeString},
	&txlog.PrimitiveType{Name: txlog.TypeBinary},
	&txlog.PrimitiveType{Name: txlog.TypeBoolean},
	&txlog.PrimitiveType{Name: txlog.TypeByte},
	&txlog.PrimitiveType{Name: txlog.TypeShort},
	&txlog.PrimitiveType{Name: txlog.TypeInteger},
	&txlog.PrimitiveType{Name: txlog.TypeLong},
	&txlog.PrimitiveType{Name: txlog.TypeFloat},
	&txlog.PrimitiveType{Name: txlog.TypeDouble},
	&txlog.PrimitiveType{Name: txlog.TypeDate},
	&txlog.PrimitiveType{Name: txlog.TypeTimestamp},
	&txlog.PrimitiveType{Name: txlog.TypeTimestampNTZ},
	&txlog.DecimalType{Precision: 10, Scale: 2},
	&txlog.DecimalType{Precision: 38, Scale: 18},
	&txlog.DecimalType{Precision: 5, Scale: 0},
}

// FuzzPartitionValue: parsing any string as any partition column type never
// panics, fails only with ErrBadPartitionValue naming the value, and a
// parsed value materialises as a constant column.
func FuzzPartitionValue(f *testing.F) {
	for _, s := range []string{
		"", "__HIVE_DEFAULT_PARTITION__", "0", "-1", "2021.0", "9223372036854775807", "1e308",
		"NaN", "-Infinity", "true", "2021-09-08", "2021-09-08 11:11:11", "2021-09-08T11:11:11.123456Z",
		"2021-09-08 11:11:11+05:30", "12.345", "-0.00000001", "99999999999999999999999999999999999999",
		"1e-400", "1/3", " 42 ", "a b%20c",
	} {
		for _, i := range []int{0, 2, 6, 8, 9, 10, 12} {
			f.Add(uint8(i), s)
		}
	}
	seen := map[string]bool{}
	for _, a := range fixtureAdds(f) {
		for _, v := range a.PartitionValues {
			if v != nil && !seen[*v] {
				seen[*v] = true
				f.Add(uint8(len(seen)), *v) // each distinct value once, types rotating
			}
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, s string) {
		typ := partitionFuzzTypes[int(ti)%len(partitionFuzzTypes)]
		pv, err := parsePartitionValue(typ, &s)
		if err != nil {
			if !errors.Is(err, ErrBadPartitionValue) {
				t.Fatalf("%s %q: error %v does not wrap ErrBadPartitionValue", typ, s, err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("%s %q: error %q does not quote the value", typ, s, err)
			}
			return
		}
		if !pv.null && pv.scalar == nil {
			t.Fatalf("%s %q: not null and no value", typ, s)
		}
		vec := constantVector(pv, 3)
		if vec == nil || vec.Len() != 3 {
			t.Fatalf("%s %q: constant vector %v", typ, s, vec)
		}
		if p, ok := typ.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeLong && !pv.null {
			n := pv.scalar.(int64)
			again, err := parsePartitionValue(typ, fuzzStrPtr(strconv.FormatInt(n, 10)))
			if err != nil || again.scalar != n {
				t.Fatalf("long %q -> %d does not round-trip: %v %v", s, n, again.scalar, err)
			}
		}
	})
}

func fuzzStrPtr(s string) *string { return &s }

// FuzzResolvePath: an add.path either resolves to a clean key inside the
// table root (valid for every store, no ".." segment) or fails with
// ErrBadPath; it never escapes the root.
func FuzzResolvePath(f *testing.F) {
	root := "/data/tables/t1"
	st, err := store.NewFileStore(root)
	if err != nil {
		f.Skip(err)
	}
	for _, s := range []string{
		"a=1/part-0.parquet", "../x", "%2e%2e/x", "a/%2E%2E/%2e%2e/x", "file:///data/tables/t1/a.parquet",
		"file:/data/tables/t1/../t2/a.parquet", "/data/tables/t1/a", "/data/tables/t10/a", "s3://b/k",
		"a%2Fb", "a%00b", "a\\..\\..\\b", "./a", "a//b", "%", "%zz", "file://data/tables/t1/a",
	} {
		f.Add(s)
	}
	seen := map[string]bool{}
	for _, a := range fixtureAdds(f) {
		if len(seen) < 300 && !seen[a.Path] {
			seen[a.Path] = true
			f.Add(a.Path)
		}
	}
	f.Fuzz(func(t *testing.T, p string) {
		key, err := resolvePath(st, p)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("%q: error %v does not wrap ErrBadPath", p, err)
			}
			return
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("%q resolved to %q, which has a %q segment", p, key, seg)
			}
		}
		if strings.HasPrefix(key, "/") || strings.Contains(key, "://") && strings.HasPrefix(key, "file:") {
			t.Fatalf("%q resolved to a non-relative key %q", p, key)
		}
	})
}
