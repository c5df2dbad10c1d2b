package pqopen_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/internal/pqopen"
	"github.com/kappa-lake/kappa/txlog"
)

// countingReaderAt counts the ReadAt calls that reach the file.
type countingReaderAt struct {
	r     *bytes.Reader
	calls int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	return c.r.ReadAt(p, off)
}

// memFile is a Putter keeping the one file a FileWriter writes.
type memFile struct{ data []byte }

func (m *memFile) Put(_ context.Context, _ string, data []byte) error {
	m.data = bytes.Clone(data)
	return nil
}

func (m *memFile) Delete(context.Context, string) error { return nil }

// parquetFile writes a real Parquet file of rows rows with pq.
func parquetFile(t *testing.T, rows int) []byte {
	t.Helper()
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
		{Name: "name", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true},
	}}
	dst := &memFile{}
	w, err := pq.NewFileWriter(dst, pq.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range rows {
		if err := w.WriteRow(ctx, map[string]any{"id": int64(i), "name": strings.Repeat("x", i%50)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(dst.data) == 0 {
		t.Fatal("no file written")
	}
	return dst.data
}

// TestCheckTail: the footer magic and a footer length that fits are
// accepted; short files, other magics and lengths beyond the file are
// ErrBadFooter with a message naming the problem.
func TestCheckTail(t *testing.T) {
	tail := func(n uint32, magic string) []byte {
		b := binary.LittleEndian.AppendUint32([]byte("PAR1"), n)
		return append(b, magic...)
	}
	if n, err := pqopen.CheckTail(tail(0, "PAR1"), 12); err != nil || n != 0 {
		t.Errorf("empty footer: %d, %v", n, err)
	}
	if n, err := pqopen.CheckTail(tail(88, "PAR1"), 100); err != nil || n != 88 {
		t.Errorf("footer filling the file: %d, %v", n, err)
	}
	bad := map[string]struct {
		tail []byte
		size int64
		msg  string
	}{
		"8-byte file":        {tail(0, "PAR1")[4:], 8, "too short"},
		"footer length +1":   {tail(89, "PAR1"), 100, "footer length 89 does not fit in a file of 100 bytes"},
		"footer length 4GiB": {tail(0xfd000000, "PAR1"), 12, "does not fit"},
		"encrypted":          {tail(0, "PARE"), 12, "encrypted"},
		"no magic":           {tail(0, "JSON"), 12, `footer magic "JSON"`},
	}
	for name, c := range bad {
		_, err := pqopen.CheckTail(c.tail, c.size)
		if !errors.Is(err, pqopen.ErrBadFooter) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want ErrBadFooter saying %q", name, err, c.msg)
		}
	}
}

// TestOpenFile: a real file opens with one read of the store when it fits
// in the tail, and two (tail, then the header magic) when it does not; its
// rows read back. A corrupt footer length is refused without allocating
// it.
func TestOpenFile(t *testing.T) {
	data := parquetFile(t, 1000)
	for _, c := range []struct {
		tail  int64
		reads int
	}{{int64(len(data)), 1}, {1 << 20, 1}, {256, 2}} {
		r := &countingReaderAt{r: bytes.NewReader(data)}
		f, err := pqopen.OpenFile(r, int64(len(data)), c.tail)
		if err != nil {
			t.Fatal(err)
		}
		if f.NumRows() != 1000 {
			t.Errorf("tail %d: %d rows", c.tail, f.NumRows())
		}
		if footer := int64(binary.LittleEndian.Uint32(data[len(data)-8:])); footer+8 <= c.tail && r.calls != c.reads {
			t.Errorf("tail %d (footer %d bytes): %d reads, want %d", c.tail, footer, r.calls, c.reads)
		}
		rows := f.RowGroups()[0].Rows()
		buf := make([]parquet.Row, 10)
		n, _ := rows.ReadRows(buf)
		if n == 0 || buf[n-1][0].Int64() != int64(n-1) {
			t.Errorf("tail %d: read %d rows, last %v", c.tail, n, buf[max(n-1, 0)])
		}
		_ = rows.Close()
	}

	corrupt := bytes.Clone(data)
	binary.LittleEndian.PutUint32(corrupt[len(corrupt)-8:], 0xfd000000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := pqopen.OpenFile(bytes.NewReader(corrupt), int64(len(corrupt)), 64<<10)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, pqopen.ErrBadFooter) {
		t.Fatalf("err = %v, want ErrBadFooter", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing a 4 GiB footer length allocated %d bytes", grew)
	}

	short := bytes.NewReader(data[:10])
	if _, err := pqopen.OpenFile(short, 20, 64<<10); err == nil || !strings.Contains(err.Error(), "last 20 bytes") {
		t.Errorf("file shorter than its size: err = %v", err)
	}
}
