// Package pqopen opens Parquet files for reading with parquet-go after
// checking what parquet-go trusts: the footer length in a file's last
// bytes. Both the checkpoint reader (txlog) and the data file reader
// (reader) open files through it.
package pqopen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// ErrBadFooter marks a Parquet file whose last eight bytes (footer length
// and magic) cannot be right for its size.
var ErrBadFooter = errors.New("bad parquet footer")

// CheckTail checks the end of a Parquet file of size bytes, given at least
// its last 8 bytes in tail: the footer magic must be PAR1 and the footer
// length must fit in the file after the 4-byte header magic. parquet-go
// allocates the length a footer declares before reading it, so without
// this check a corrupt length allocates up to 4 GiB. It returns the
// footer length.
func CheckTail(tail []byte, size int64) (int64, error) {
	if size < 12 || len(tail) < 8 {
		return 0, fmt.Errorf("%w: a file of %d bytes is too short for Parquet (12 at least)", ErrBadFooter, size)
	}
	end := tail[len(tail)-8:]
	switch magic := string(end[4:]); magic {
	case "PAR1":
	case "PARE":
		return 0, fmt.Errorf("%w: the footer is encrypted (magic PARE), which is not supported", ErrBadFooter)
	default:
		return 0, fmt.Errorf("%w: footer magic %q, want \"PAR1\"", ErrBadFooter, magic)
	}
	n := int64(binary.LittleEndian.Uint32(end[:4]))
	if n+12 > size {
		return 0, fmt.Errorf("%w: footer length %d does not fit in a file of %d bytes", ErrBadFooter, n, size)
	}
	return n, nil
}

// OpenFile opens the Parquet file of size bytes in r with parquet.OpenFile,
// after CheckTail. Its last tailSize bytes (capped at size) are read with
// one ReadAt and serve parquet-go's reads of the footer, so a footer that
// fits in them costs no other request.
func OpenFile(r io.ReaderAt, size, tailSize int64, opts ...parquet.FileOption) (*parquet.File, error) {
	tailSize = max(min(tailSize, size), 0)
	tail := make([]byte, tailSize)
	if err := ReadFull(r, tail, size-tailSize); err != nil {
		return nil, fmt.Errorf("read the last %d bytes: %w", tailSize, err)
	}
	if _, err := CheckTail(tail, size); err != nil {
		return nil, err
	}
	return parquet.OpenFile(&tailReaderAt{r: r, off: size - tailSize, tail: tail}, size, opts...)
}

// ReadFull reads len(p) bytes of r at off; a short read is
// io.ErrUnexpectedEOF.
func ReadFull(r io.ReaderAt, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(p), off, err)
}

// tailReaderAt serves reads inside tail (the bytes at off) from memory and
// the others from r.
type tailReaderAt struct {
	r    io.ReaderAt
	off  int64
	tail []byte
}

func (t *tailReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.off && off+int64(len(p)) <= t.off+int64(len(t.tail)) {
		return copy(p, t.tail[off-t.off:]), nil
	}
	return t.r.ReadAt(p, off)
}
