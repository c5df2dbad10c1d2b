package reader

import (
	"math"
	"math/bits"
)

// approx_count_distinct: a HyperLogLog sketch of our own.
//
// # Sketch layout
//
// A serialised sketch is one byte holding the precision p (hllP = 12),
// followed by 2^p register bytes. Register j holds the largest "rank"
// (1 + leading zeros of the remaining 64-p hash bits) seen for a value
// whose hash has j in its top p bits. Sketches merge by taking the maximum
// of each register, so the state is exactly mergeable across workers,
// refreshes and files. Values are hashed with FNV-1a over their canonical
// encoding (encodeValue) followed by a 64-bit finaliser, a fixed function:
// sketches written by one process merge with sketches of another. The
// standard error is about 1.04/sqrt(4096) = 1.6%; small cardinalities use
// linear counting and are exact in practice up to a few hundred values.

const (
	hllP = 12
	hllM = 1 << hllP
)

func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// murmur3 fmix64
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func hllAdd(regs []byte, h uint64) {
	j := h >> (64 - hllP)
	w := h<<hllP | 1<<(hllP-1) // guard bit bounds the rank
	r := byte(bits.LeadingZeros64(w) + 1)
	if r > regs[j] {
		regs[j] = r
	}
}

func hllEstimate(regs []byte) int64 {
	if regs == nil {
		return 0
	}
	sum := 0.0
	zeros := 0
	for _, r := range regs {
		sum += 1 / float64(uint64(1)<<r)
		if r == 0 {
			zeros++
		}
	}
	m := float64(hllM)
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}

type hllState struct {
	regs [][]byte
	buf  []byte
}

func (s *hllState) sketch(g int32) []byte {
	if s.regs[g] == nil {
		s.regs[g] = make([]byte, hllM)
	}
	return s.regs[g]
}

func (s *hllState) update(gids []int32, arg *col, groups int) {
	s.regs = grow(s.regs, groups)
	for i, g := range gids {
		if arg.null(i) {
			continue
		}
		s.buf = encodeValue(s.buf[:0], arg, i)
		hllAdd(s.sketch(g), hash64(s.buf))
	}
}

func (s *hllState) stateTypes() []stateCol {
	return []stateCol{{"hll", vtype{k: vStr}, true}}
}

func (s *hllState) export(n int) []*col {
	s.regs = grow(s.regs, n)
	out := newCol(vtype{k: vStr}, n)
	for g := 0; g < n; g++ {
		if s.regs[g] == nil {
			out.setNull(g)
			continue
		}
		out.s[g] = string(append([]byte{hllP}, s.regs[g]...))
	}
	return []*col{out}
}

func (s *hllState) mergeState(gids []int32, cols []*col, groups int) {
	s.regs = grow(s.regs, groups)
	c := cols[0]
	for i, g := range gids {
		if c.null(i) {
			continue
		}
		b := c.s[c.idx(i)]
		if len(b) != hllM+1 || b[0] != hllP {
			continue // not a sketch of this layout
		}
		regs := s.sketch(g)
		for j := 0; j < hllM; j++ {
			if b[j+1] > regs[j] {
				regs[j] = b[j+1]
			}
		}
	}
}

func (s *hllState) final(n int) *col {
	s.regs = grow(s.regs, n)
	out := newCol(vtype{k: vInt}, n)
	for g := 0; g < n; g++ {
		out.i[g] = hllEstimate(s.regs[g])
	}
	return out
}
