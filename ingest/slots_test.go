package ingest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/txlog"
)

// TestDecodeFastMatchesDecode: the slot rows of decodeFast hold exactly
// the rows of decode (metadata and derived columns, dropped or reported
// unknown fields, errors), under several option sets.
func TestDecodeFastMatchesDecode(t *testing.T) {
	msgs := []string{
		`{"id":"a","n":12345678901234567890,"ts":"2026-01-02T23:30:00Z","extra":1}`,
		`{"id":"a","ts":86400000}`,
		`{"id":"a","n":1,"n":2}`,
		`{"\u0069d":"esc","n":null}`,
		`{}`,
		` {"id" : "sp" , "tags":["x",{"y":[1,2]}], "o":{"k":"v"}} `,
		`{"id":"a","ts":true}`,
		`{"id":"a","ts":"not a time"}`,
		`{"day":"2020-01-01","k_topic":"mine","id":"m"}`,
		`{"k_off":"x","k_part":1,"k_topic":2,"k_ts":3,"k_key":4,"day":5,"hr":6,"n":7,"id":"last"}`,
		`nope`, `[1]`, `"s"`, `null`, `{"id":"a"} x`, ``, `{"id":`, `{"id":"a",}`, `{"a":"\x01"}`,
	}
	full := (&Options{
		Metadata: MetadataColumns{Topic: "k_topic", Partition: "k_part", Offset: "k_off", Timestamp: "k_ts", Key: "k_key"},
		Derived:  []DerivedColumn{{Name: "day", Source: "ts", Func: DeriveDate}, {Name: "hr", Source: "ts", Func: DeriveHour}},
	}).EnsureDefaults()
	withTS := func(s *txlog.StructType) *txlog.StructType {
		s.Fields = append(s.Fields, &txlog.StructField{Name: "ts", Type: &txlog.PrimitiveType{Name: "timestamp"}, Nullable: true})
		return s
	}
	schemaFull := withTS(testSchema())
	schemaFull.Fields = append(schemaFull.Fields, metadataFields(full.Metadata, full.Derived)...)
	cases := []struct {
		name   string
		schema *txlog.StructType
		opts   *Options
		slots  bool
	}{
		{"plain", testSchema(), (&Options{}).EnsureDefaults(), true},
		{"metadata", schemaFull, full, true},
		{"evolve", schemaFull, func() *Options { o := *full; o.SchemaEvolution = true; return &o }(), true},
		{"metadata not in schema", withTS(testSchema()), full, false},
		{"derived from outside", testSchema(), (&Options{Derived: []DerivedColumn{{Name: "n", Source: "ts", Func: DeriveHour}}}).EnsureDefaults(), false},
		{"plain after a wider schema", testSchema(), (&Options{}).EnsureDefaults(), true},
	}
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var order keyOrder // shared across cases: decoders differ, guesses must be checked
	for _, c := range cases {
		d := newDecoder(c.schema, c.opts)
		if d.slots != c.slots {
			t.Errorf("%s: slots %v, want %v", c.name, d.slots, c.slots)
		}
		for _, m := range msgs {
			for i, key := range [][]byte{nil, []byte("k"), nil} {
				want := d.decode("t", 3, 42, key, []byte(m), ts)
				o := &order
				if i == 0 {
					o = nil
				}
				got := d.decodeFast(o, "t", 3, 42, key, []byte(m), ts)
				if (want.err == nil) != (got.err == nil) || want.err != nil && want.err.Error() != got.err.Error() {
					t.Fatalf("%s %q: decode error %v, decodeFast error %v", c.name, m, want.err, got.err)
				}
				slices.Sort(want.newFields)
				slices.Sort(got.newFields)
				if !slices.Equal(want.newFields, got.newFields) {
					t.Fatalf("%s %q: new fields %v vs %v", c.name, m, want.newFields, got.newFields)
				}
				row := got.row
				if got.vals != nil {
					row = map[string]any{}
					for i, v := range got.vals {
						if v != pq.Missing {
							row[got.names[i]] = v
						}
					}
				}
				if want.err == nil && want.newFields == nil && !reflect.DeepEqual(want.row, row) {
					t.Fatalf("%s %q: decode %v, decodeFast %v", c.name, m, want.row, row)
				}
				got.recycle()
			}
		}
	}
}
