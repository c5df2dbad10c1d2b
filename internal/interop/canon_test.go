//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// canonValue renders v (a value from reader.Row, typed t) in the canonical
// form shared with scripts/interop/engines.py (see the package doc).
func canonValue(v any, t txlog.DataType) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t := t.(type) {
	case *txlog.DecimalType:
		d, ok := v.(reader.Decimal)
		if !ok {
			return nil, fmt.Errorf("decimal: got %T", v)
		}
		if d.Scale != t.Scale {
			return nil, fmt.Errorf("decimal scale %d, type %s", d.Scale, t)
		}
		return d.String(), nil
	case *txlog.StructType:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("struct: got %T", v)
		}
		out := make(map[string]any, len(t.Fields))
		for _, f := range t.Fields {
			c, err := canonValue(m[f.Name], f.Type)
			if err != nil {
				return nil, fmt.Errorf("%s.%w", f.Name, err)
			}
			out[f.Name] = c
		}
		return out, nil
	case *txlog.ArrayType:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array: got %T", v)
		}
		out := make([]any, 0, len(items))
		for _, x := range items {
			c, err := canonValue(x, t.ElementType)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	case *txlog.MapType:
		entries, ok := v.([]reader.MapEntry)
		if !ok {
			return nil, fmt.Errorf("map: got %T", v)
		}
		type pair struct {
			key string
			kv  []any
		}
		pairs := make([]pair, 0, len(entries))
		for _, e := range entries {
			k, err := canonValue(e.Key, t.KeyType)
			if err != nil {
				return nil, err
			}
			x, err := canonValue(e.Value, t.ValueType)
			if err != nil {
				return nil, err
			}
			ks, err := canonJSON(k)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, pair{ks, []any{k, x}})
		}
		sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })
		out := make([]any, 0, len(pairs))
		for _, p := range pairs {
			out = append(out, p.kv)
		}
		return out, nil
	case *txlog.PrimitiveType:
		return canonPrimitive(v, t.Name)
	}
	return nil, fmt.Errorf("unknown type %T", t)
}

func canonPrimitive(v any, name string) (any, error) {
	switch name {
	case txlog.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("string: got %T", v)
		}
		return s, nil
	case txlog.TypeLong, txlog.TypeInteger, txlog.TypeShort, txlog.TypeByte:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case int8:
			return int64(x), nil
		case int:
			return int64(x), nil
		}
		return nil, fmt.Errorf("%s: got %T", name, v)
	case txlog.TypeFloat, txlog.TypeDouble:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		case float64:
			f = x
		default:
			return nil, fmt.Errorf("%s: got %T", name, v)
		}
		if math.IsNaN(f) {
			return "NaN", nil
		}
		return fmt.Sprintf("f:%d", math.Float64bits(f)), nil
	case txlog.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("boolean: got %T", v)
		}
		return b, nil
	case txlog.TypeBinary:
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("binary: got %T", v)
		}
		return "b64:" + base64.StdEncoding.EncodeToString(b), nil
	case txlog.TypeDate:
		d, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("date: got %T", v)
		}
		return d.UTC().Format("2006-01-02"), nil
	case txlog.TypeTimestamp:
		d, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("timestamp: got %T", v)
		}
		return d.UTC().Format("2006-01-02T15:04:05.000000Z"), nil
	case txlog.TypeTimestampNTZ:
		d, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("timestamp_ntz: got %T", v)
		}
		return d.UTC().Format("2006-01-02T15:04:05.000000"), nil
	}
	return nil, fmt.Errorf("unsupported type %s", name)
}

// canonJSON is compact JSON with sorted object keys and no HTML escaping,
// as Python's json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False) writes it for the values the suite uses.
func canonJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// canonRow renders one row of the schema.
func canonRow(r reader.Row, schema *txlog.StructType) (string, error) {
	obj := make(map[string]any, len(schema.Fields))
	for _, f := range schema.Fields {
		v, _ := r.Get(f.Name)
		c, err := canonValue(v, f.Type)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", f.Name, err)
		}
		obj[f.Name] = c
	}
	return canonJSON(obj)
}

// kappaRows scans a snapshot and returns its canonical rows, sorted.
func kappaRows(ctx context.Context, snap *table.Snapshot) ([]string, error) {
	schema := snap.Schema()
	var out []string
	for r, err := range reader.NewScan(snap).Rows(ctx) {
		if err != nil {
			return nil, fmt.Errorf("scan version %d: %w", snap.Version(), err)
		}
		s, err := canonRow(r, schema)
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", snap.Version(), err)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// readLines reads a canonical rows file (one row per line), sorted.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out, nil
}

func writeLines(path string, lines []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// diffMultisets returns up to n rows only in want (missing) and only in got
// (extra), and the total counts.
func diffMultisets(want, got []string, n int) (missing, extra []string, nMissing, nExtra int) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := count[k]
		for ; c > 0; c-- {
			nMissing++
			if len(missing) < n {
				missing = append(missing, k)
			}
		}
		for ; c < 0; c++ {
			nExtra++
			if len(extra) < n {
				extra = append(extra, k)
			}
		}
	}
	return missing, extra, nMissing, nExtra
}
