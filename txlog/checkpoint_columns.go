package txlog

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// This file holds the low-level column machinery of the checkpoint reader.
// A checkpoint is read column by column: for each row group, one cursor per
// needed leaf column walks its pages in lockstep with the others, row by
// row. Only the leaves the reader asks for are decoded, which keeps the hot
// path (add.path, add.size, add.stats, ...) free of the wide stats_parsed
// columns, and memory is bounded by one page per open column.

// colCursor streams the values of one leaf column of one row group, one row
// at a time. A nil *colCursor stands for a column missing from the file: it
// yields null values.
type colCursor struct {
	leaf   *parquet.Column
	chunk  parquet.ColumnChunk
	pages  parquet.Pages
	vr     parquet.ValueReader
	buf    []parquet.Value
	i, n   int
	eof    bool
	row    int64 // index of the next row to be returned
	maxDef int
	maxRep int
	err    error
}

const cursorBufSize = 1024

func newCursor(leaf *parquet.Column, rg parquet.RowGroup) *colCursor {
	return &colCursor{
		leaf:   leaf,
		chunk:  rg.ColumnChunks()[leaf.Index()],
		maxDef: leaf.MaxDefinitionLevel(),
		maxRep: leaf.MaxRepetitionLevel(),
	}
}

// fill makes at least one buffered value available; it returns false at the
// end of the column chunk.
func (c *colCursor) fill() bool {
	for c.i >= c.n {
		if c.err != nil || c.eof {
			return false
		}
		if c.pages == nil {
			c.pages = c.chunk.Pages()
			if c.buf == nil {
				c.buf = make([]parquet.Value, cursorBufSize)
			}
		}
		if c.vr == nil {
			p, err := c.pages.ReadPage()
			if err != nil {
				if errors.Is(err, io.EOF) {
					c.eof = true
					return false
				}
				c.err = fmt.Errorf("column %s: %w", colPath(c.leaf), err)
				return false
			}
			c.vr = p.Values()
		}
		n, err := c.vr.ReadValues(c.buf)
		c.i, c.n = 0, n
		if n == 0 && err == nil {
			err = io.EOF // a reader making no progress: treat the page as done
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.err = fmt.Errorf("column %s: %w", colPath(c.leaf), err)
				return false
			}
			c.vr = nil
		}
	}
	return true
}

// next returns the single value of the next row of a non-repeated column.
// A missing column (nil cursor) yields a null value of definition level 0.
func (c *colCursor) next() parquet.Value {
	if c == nil {
		return parquet.Value{}
	}
	if !c.fill() {
		if c.err == nil {
			c.err = fmt.Errorf("column %s: fewer values than rows", colPath(c.leaf))
		}
		return parquet.Value{}
	}
	v := c.buf[c.i]
	c.i++
	c.row++
	if c.maxRep > 0 {
		// Drop the rest of a repeated row.
		for c.fill() && c.buf[c.i].RepetitionLevel() > 0 {
			c.i++
		}
	}
	return v
}

// nextRow appends all values of the next row (one per repeated element, or a
// single value carrying the definition level of the empty/null container) to
// dst and returns it.
func (c *colCursor) nextRow(dst []parquet.Value) []parquet.Value {
	if c == nil {
		return append(dst, parquet.Value{})
	}
	if !c.fill() {
		if c.err == nil {
			c.err = fmt.Errorf("column %s: fewer values than rows", colPath(c.leaf))
		}
		return append(dst, parquet.Value{})
	}
	dst = append(dst, c.buf[c.i])
	c.i++
	c.row++
	for c.fill() && c.buf[c.i].RepetitionLevel() > 0 {
		dst = append(dst, c.buf[c.i])
		c.i++
	}
	return dst
}

// at returns the single value of row (see next), skipping earlier rows.
func (c *colCursor) at(row int64) parquet.Value {
	if c == nil {
		return parquet.Value{}
	}
	c.skipTo(row)
	return c.next()
}

// rowAt returns the values of row (see nextRow), skipping earlier rows.
func (c *colCursor) rowAt(row int64, dst []parquet.Value) []parquet.Value {
	if c == nil {
		return append(dst, parquet.Value{})
	}
	c.skipTo(row)
	return c.nextRow(dst)
}

// skipTo advances the cursor so that the next row returned is row.
func (c *colCursor) skipTo(row int64) {
	for c != nil && c.row < row && c.err == nil {
		c.next()
	}
}

func (c *colCursor) close() {
	if c != nil && c.pages != nil {
		_ = c.pages.Close()
		c.pages = nil
	}
}

func colPath(c *parquet.Column) string {
	if c == nil {
		return "?"
	}
	p := c.Path()
	s := ""
	for i, e := range p {
		if i > 0 {
			s += "."
		}
		s += e
	}
	return s
}

// child returns the named child column of c, or nil (also when c is nil).
func child(c *parquet.Column, name string) *parquet.Column {
	if c == nil {
		return nil
	}
	for _, ch := range c.Columns() {
		if ch.Name() == name {
			return ch
		}
	}
	return nil
}

// firstLeaf returns the first leaf column at or under c.
func firstLeaf(c *parquet.Column) *parquet.Column {
	for c != nil && !c.Leaf() {
		cs := c.Columns()
		if len(cs) == 0 {
			return nil
		}
		c = cs[0]
	}
	return c
}

// defLevel is the definition level at which the (group) column c is non-null.
func defLevel(c *parquet.Column) int {
	if c == nil {
		return 0
	}
	return c.MaxDefinitionLevel()
}
