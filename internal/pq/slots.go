package pq

import (
	"context"
	"errors"
	"fmt"
	"unsafe"
)

// missingValue is the type of Missing.
type missingValue struct{ _ byte }

// Missing marks a field absent from a row given to WriteSlots (as opposed
// to nil, a null value): a non-nullable column reports it as missing.
var Missing any = &missingValue{}

// slotLayout maps the fields of a WriteSlots row onto the writer's columns.
type slotLayout struct {
	names []string // the layout's field names (identity-compared)
	data  []int    // by top-level data column: index into the row, -1 when absent
	part  []int    // by partition column: index into the row, -1 when absent
	extra []int    // row fields the data files do not have (not partition columns)
}

// layoutFor returns the layout of rows with the given fields, reusing the
// last one when names is the same slice.
func (w *FileWriter) layoutFor(names []string) *slotLayout {
	if l := w.slots; l != nil && len(l.names) == len(names) && unsafe.SliceData(l.names) == unsafe.SliceData(names) {
		return l
	}
	pos := make(map[string]int, len(names))
	for i, n := range names {
		pos[n] = i
	}
	l := &slotLayout{names: names}
	idx := func(name string) int {
		if i, ok := pos[name]; ok {
			return i
		}
		return -1
	}
	for _, c := range w.plan.root.children {
		l.data = append(l.data, idx(c.logical))
	}
	for _, p := range w.partNames {
		l.part = append(l.part, idx(p))
	}
	for i, n := range names {
		if w.plan.root.byName[n] == nil && !w.cfg.partition[n] {
			l.extra = append(l.extra, i)
		}
	}
	w.slots = l
	return l
}

// WriteSlots appends one row given as one value per name (names[i] is the
// Delta column name of vals[i]; Missing marks an absent field). It is
// WriteRow without the map: the same coercions, partitioning and errors.
// Writers are fastest when successive rows share the same names slice.
func (w *FileWriter) WriteSlots(ctx context.Context, names []string, vals []any) error {
	if w.closed {
		return fmt.Errorf("%w: writer closed", ErrInvalidOptions)
	}
	if len(vals) != len(names) {
		return fmt.Errorf("%w: %d values for %d names", ErrInvalidOptions, len(vals), len(names))
	}
	l := w.layoutFor(names)
	p, err := w.partitionOfSlots(l, vals)
	if err != nil {
		return err
	}
	if err := p.cs.writeSlots(l, vals); err != nil {
		return w.rowErr(err)
	}
	return w.rowDone(ctx, p)
}

func (w *FileWriter) partitionOfSlots(l *slotLayout, vals []any) (*partFile, error) {
	if len(w.partNames) == 0 {
		return w.partitionOf(nil)
	}
	for i, name := range w.partNames {
		var v any
		if j := l.part[i]; j >= 0 && vals[j] != Missing {
			v = vals[j]
		}
		pv, err := PartitionValue(v, w.partTypes[i], w.opts.TimestampUnit)
		if err != nil {
			return nil, &RowError{Row: int(w.rows), Column: name, Err: err}
		}
		w.pvs[i] = pv
	}
	return w.partitionFor(w.pvs)
}

// writeSlots is writeMap for a row laid out by l. On error the row is
// rolled back.
func (cs *colSet) writeSlots(l *slotLayout, vals []any) error {
	cs.begin()
	if err := cs.writeSlotFields(l, vals); err != nil {
		cs.rollback()
		return err
	}
	cs.rows++
	return nil
}

func (cs *colSet) writeSlotFields(l *slotLayout, vals []any) error {
	for i, c := range cs.plan.root.children {
		var v any
		ok := false
		if j := l.data[i]; j >= 0 && vals[j] != Missing {
			v, ok = vals[j], true
		}
		if err := cs.writeField(c, v, ok, 0); err != nil {
			return err
		}
	}
	if !cs.cfg.ignoreUnknown {
		for _, j := range l.extra {
			if vals[j] != Missing {
				return &colErr{path: l.names[j], err: errors.New("unknown column (not in the table schema)")}
			}
		}
	}
	return nil
}
