package reader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// ErrBadDeletionVector reports a deletion vector that cannot be decoded.
var ErrBadDeletionVector = errors.New("bad deletion vector")

// RoaringBitmapArray magic number (little-endian int32 before the bitmaps).
const dvMagic = 1681511377

const z85Chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

var z85Decode = func() [256]int16 {
	var t [256]int16
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(z85Chars); i++ {
		t[z85Chars[i]] = int16(i)
	}
	return t
}()

// decodeZ85 decodes Z85 text (length a multiple of 5).
func decodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: z85 length %d is not a multiple of 5", ErrBadDeletionVector, len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := range 5 {
			d := z85Decode[s[i+j]]
			if d < 0 {
				return nil, fmt.Errorf("%w: invalid z85 character %q", ErrBadDeletionVector, s[i+j])
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return nil, fmt.Errorf("%w: z85 block overflows", ErrBadDeletionVector)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(v))
	}
	return out, nil
}

// dvPath returns the store key of an on-disk deletion vector.
func dvPath(st store.Store, dv *txlog.DeletionVector) (string, error) {
	switch dv.StorageType {
	case "u":
		s := dv.PathOrInlineDv
		if len(s) < 20 {
			return "", fmt.Errorf("%w: uuid path %q too short", ErrBadDeletionVector, s)
		}
		prefix, enc := s[:len(s)-20], s[len(s)-20:]
		raw, err := decodeZ85(enc)
		if err != nil {
			return "", err
		}
		id, err := uuid.FromBytes(raw)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadDeletionVector, err)
		}
		name := "deletion_vector_" + id.String() + ".bin"
		if prefix != "" {
			name = prefix + "/" + name
		}
		return name, nil
	case "p":
		return resolvePath(st, dv.PathOrInlineDv)
	}
	return "", fmt.Errorf("%w: unknown storage type %q", ErrBadDeletionVector, dv.StorageType)
}

// loadDeletionVector returns the sorted deleted row indexes of a file.
func loadDeletionVector(ctx context.Context, st store.Store, dv *txlog.DeletionVector) (*rowSet, error) {
	var payload []byte
	if dv.StorageType == "i" {
		raw, err := decodeZ85(dv.PathOrInlineDv)
		if err != nil {
			return nil, err
		}
		if int(dv.SizeInBytes) > 0 && int(dv.SizeInBytes) <= len(raw) {
			raw = raw[:dv.SizeInBytes]
		}
		payload = raw
	} else {
		key, err := dvPath(st, dv)
		if err != nil {
			return nil, err
		}
		r, err := st.Open(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("open deletion vector %s: %w", key, err)
		}
		defer r.Close()
		off := int64(1)
		if dv.Offset != nil {
			off = int64(*dv.Offset)
		}
		buf := make([]byte, 4+int(dv.SizeInBytes)+4)
		if _, err := r.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("read deletion vector %s@%d: %w", key, off, err)
		}
		size := binary.BigEndian.Uint32(buf)
		if int(size) != int(dv.SizeInBytes) {
			return nil, fmt.Errorf("%w: %s: stored size %d, descriptor says %d", ErrBadDeletionVector, key, size, dv.SizeInBytes)
		}
		payload = buf[4 : 4+size]
		if sum := binary.BigEndian.Uint32(buf[4+size:]); sum != crc32.ChecksumIEEE(payload) {
			return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrBadDeletionVector, key)
		}
	}
	rs, err := decodeBitmapArray(payload)
	if err != nil {
		return nil, err
	}
	if dv.Cardinality > 0 && int64(rs.len()) != dv.Cardinality {
		return nil, fmt.Errorf("%w: decoded %d rows, descriptor says %d", ErrBadDeletionVector, rs.len(), dv.Cardinality)
	}
	return rs, nil
}

// rowSet is a sorted set of row indexes.
type rowSet struct{ rows []uint64 }

func (r *rowSet) len() int { return len(r.rows) }

// decodeBitmapArray decodes magic + RoaringBitmapArray (64-bit "portable"
// layout: uint64 count, then per bitmap a uint32 high key and a 32-bit
// roaring bitmap in the portable serialization format).
func decodeBitmapArray(b []byte) (*rowSet, error) {
	bad := func(msg string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDeletionVector, fmt.Sprintf(msg, a...))
	}
	if len(b) < 12 {
		return nil, bad("payload of %d bytes is too short", len(b))
	}
	if m := binary.LittleEndian.Uint32(b); m != dvMagic {
		return nil, bad("magic %d, want %d", m, dvMagic)
	}
	n := binary.LittleEndian.Uint64(b[4:])
	p := b[12:]
	rs := &rowSet{}
	for i := uint64(0); i < n; i++ {
		if len(p) < 4 {
			return nil, bad("truncated bitmap key")
		}
		high := uint64(binary.LittleEndian.Uint32(p)) << 32
		used, err := decodeRoaring32(p[4:], func(x uint32) { rs.rows = append(rs.rows, high|uint64(x)) })
		if err != nil {
			return nil, err
		}
		p = p[4+used:]
	}
	return rs, nil
}

const (
	roaringCookieNoRun = 12346
	roaringCookie      = 12347
)

// decodeRoaring32 decodes one portable 32-bit roaring bitmap, calling add
// for every value in ascending order; it returns the bytes consumed.
func decodeRoaring32(b []byte, add func(uint32)) (int, error) {
	bad := func(msg string) (int, error) { return 0, fmt.Errorf("%w: roaring: %s", ErrBadDeletionVector, msg) }
	if len(b) < 4 {
		return bad("truncated header")
	}
	cookie := binary.LittleEndian.Uint32(b)
	pos := 4
	var n int
	var runFlags []byte
	hasRun := false
	switch {
	case cookie == roaringCookieNoRun:
		if len(b) < 8 {
			return bad("truncated header")
		}
		n = int(binary.LittleEndian.Uint32(b[4:]))
		pos = 8
	case cookie&0xffff == roaringCookie:
		n = int(cookie>>16) + 1
		hasRun = true
		rb := (n + 7) / 8
		if len(b) < pos+rb {
			return bad("truncated run flags")
		}
		runFlags = b[pos : pos+rb]
		pos += rb
	default:
		return bad(fmt.Sprintf("unknown cookie %d", cookie))
	}
	if n > 1<<16 || len(b) < pos+4*n {
		return bad("truncated container headers")
	}
	keys := make([]uint16, n)
	cards := make([]int, n)
	for i := range n {
		keys[i] = binary.LittleEndian.Uint16(b[pos+4*i:])
		cards[i] = int(binary.LittleEndian.Uint16(b[pos+4*i+2:])) + 1
	}
	pos += 4 * n
	if !hasRun || n >= 4 {
		pos += 4 * n // offset header
	}
	for i := range n {
		high := uint32(keys[i]) << 16
		isRun := hasRun && runFlags[i/8]&(1<<(uint(i)%8)) != 0
		switch {
		case isRun:
			if len(b) < pos+2 {
				return bad("truncated run container")
			}
			runs := int(binary.LittleEndian.Uint16(b[pos:]))
			pos += 2
			if len(b) < pos+4*runs {
				return bad("truncated run container")
			}
			for r := range runs {
				start := uint32(binary.LittleEndian.Uint16(b[pos+4*r:]))
				length := uint32(binary.LittleEndian.Uint16(b[pos+4*r+2:]))
				for v := start; v <= start+length; v++ {
					add(high | v)
				}
			}
			pos += 4 * runs
		case cards[i] > 4096:
			if len(b) < pos+8192 {
				return bad("truncated bitmap container")
			}
			for w := range 1024 {
				word := binary.LittleEndian.Uint64(b[pos+8*w:])
				for word != 0 {
					t := word & -word
					bit := uint32(popcount(t - 1))
					add(high | uint32(w*64) + bit)
					word ^= t
				}
			}
			pos += 8192
		default:
			if len(b) < pos+2*cards[i] {
				return bad("truncated array container")
			}
			for j := range cards[i] {
				add(high | uint32(binary.LittleEndian.Uint16(b[pos+2*j:])))
			}
			pos += 2 * cards[i]
		}
	}
	return pos, nil
}

func popcount(x uint64) int {
	n := 0
	for x != 0 {
		x &= x - 1
		n++
	}
	return n
}

// resolvePath converts an add.path (URI, relative or absolute) to a store
// key, refusing paths that escape the table root.
func resolvePath(st store.Store, p string) (string, error) {
	dec, err := unescapePath(p)
	if err != nil {
		return "", fmt.Errorf("%w: path %q: %w", ErrBadPath, p, err)
	}
	if i := strings.Index(dec, "://"); i > 0 && !strings.Contains(dec[:i], "/") || strings.HasPrefix(dec, "file:/") {
		root := strings.TrimSuffix(st.URL(), "/")
		rootDec, _ := unescapePath(root)
		for _, r := range []string{root, rootDec, fileURLVariant(root), fileURLVariant(rootDec)} {
			if r != "" && strings.HasPrefix(dec, r+"/") {
				return cleanKey(p, dec[len(r)+1:])
			}
		}
		return "", fmt.Errorf("%w: absolute path %q is outside the table root %s", ErrBadPath, p, root)
	}
	if strings.HasPrefix(dec, "/") {
		root := strings.TrimSuffix(strings.TrimPrefix(st.URL(), "file://"), "/")
		if strings.HasPrefix(dec, root+"/") {
			return cleanKey(p, dec[len(root)+1:])
		}
		return "", fmt.Errorf("%w: absolute path %q is outside the table root", ErrBadPath, p)
	}
	return cleanKey(p, dec)
}

// fileURLVariant maps file:///x <-> file:/x, the two forms Spark writes.
func fileURLVariant(u string) string {
	switch {
	case strings.HasPrefix(u, "file:///"):
		return "file:/" + u[len("file:///"):]
	case strings.HasPrefix(u, "file:/"):
		return "file:///" + strings.TrimLeft(u[len("file:"):], "/")
	}
	return ""
}

func cleanKey(orig, key string) (string, error) {
	parts := strings.Split(key, "/")
	out := parts[:0]
	for _, s := range parts {
		switch s {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return "", fmt.Errorf("%w: path %q escapes the table root", ErrBadPath, orig)
			}
			out = out[:len(out)-1]
		default:
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%w: empty path %q", ErrBadPath, orig)
	}
	return strings.Join(out, "/"), nil
}

// ErrBadPath reports an add.path that cannot be resolved inside the table.
var ErrBadPath = errors.New("bad data file path")

// unescapePath percent-decodes a URI path ("+" stays "+").
func unescapePath(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		h, ok1 := unhex(s[i+1])
		l, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("invalid escape %q", s[i:i+3])
		}
		sb.WriteByte(h<<4 | l)
		i += 2
	}
	return sb.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
