package txlog

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDDL(t *testing.T) {
	st, err := ParseDDL("id long NOT NULL, ts timestamp, device string, temp double, " +
		"amount decimal(10,2), tags array<string>, attrs map<string,string>, " +
		"loc struct<lat:double,lon:double NOT NULL>, `my col` INT COMMENT 'the \\'x\\'', d DATE, n timestamp_ntz, b binary, " +
		"ok boolean, f float, s short, y byte, big BIGINT, nested array<struct<a int, b map<string, array<long>>>>")
	if err != nil {
		t.Fatal(err)
	}
	want := "struct<id:long,ts:timestamp,device:string,temp:double,amount:decimal(10,2),tags:array<string>," +
		"attrs:map<string,string>,loc:struct<lat:double,lon:double>,my col:integer,d:date,n:timestamp_ntz,b:binary," +
		"ok:boolean,f:float,s:short,y:byte,big:long,nested:array<struct<a:integer,b:map<string,array<long>>>>>"
	if got := st.String(); got != want {
		t.Errorf("schema\n got %s\nwant %s", got, want)
	}
	if st.Field("id").Nullable {
		t.Error("id NOT NULL parsed as nullable")
	}
	if !st.Field("ts").Nullable {
		t.Error("ts should be nullable by default")
	}
	loc := st.Field("loc").Type.(*StructType)
	if !loc.Field("lat").Nullable || loc.Field("lon").Nullable {
		t.Errorf("loc nullability: lat %v lon %v", loc.Field("lat").Nullable, loc.Field("lon").Nullable)
	}
	if c := string(st.Field("my col").Metadata["comment"]); c != `"the 'x'"` {
		t.Errorf("comment metadata = %s", c)
	}
	if a := st.Field("tags").Type.(*ArrayType); !a.ContainsNull {
		t.Error("array elements should be nullable by default")
	}

	// The result is a valid Delta schema: it survives the schemaString round trip.
	s, err := MarshalSchema(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != want {
		t.Errorf("round trip: %s", back.String())
	}
}

func TestParseDDLElementNullability(t *testing.T) {
	st, err := ParseDDL("a array<long NOT NULL>, m map<string, double not null>")
	if err != nil {
		t.Fatal(err)
	}
	if st.Field("a").Type.(*ArrayType).ContainsNull {
		t.Error("array<long NOT NULL> should not contain nulls")
	}
	if st.Field("m").Type.(*MapType).ValueContainsNull {
		t.Error("map value NOT NULL should not contain nulls")
	}
}

func TestParseDDLErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // substring of the error
	}{
		{"", "empty schema"},
		{"   ", "empty schema"},
		{"id", `at position 3: expected a type for column "id", found end of schema`},
		{"id long,", "at position 9: expected a column name, found end of schema"},
		{"id lng", `at position 4: unknown type "lng"`},
		{"id long, ID string", `at position 10: duplicate column name "ID" (first at position 1`},
		{"a decimal(40,2)", "decimal precision 40 out of range"},
		{"a decimal(5,6)", "decimal scale 6 exceeds precision 5"},
		{"a decimal(x)", "at position 11: expected decimal precision (a number), found \"x\""},
		{"a array<string", `at position 15: expected ">" closing array<...>, found end of schema`},
		{"a map<string>", `at position 13: expected "," between map key and value types, found ">"`},
		{"a struct<>", "struct<> needs at least one field"},
		{"a struct<x int y int>", `at position 16: expected "," or ">" after struct field "x", found "y"`},
		{"a long b long", `at position 8: expected "," or end of schema after column "a", found "b"`},
		{"a long NOT", "expected NULL after NOT, found end of schema"},
		{"`a long", "at position 1: unterminated `quoted name`"},
		{"a long comment 'x", "unterminated string literal"},
		{"a long; drop", `at position 7: unexpected character ';'`},
		{"ü long, b strin", `at position 11: unknown type "strin"`},
	} {
		_, err := ParseDDL(tc.in)
		if err == nil {
			t.Errorf("ParseDDL(%q): no error", tc.in)
			continue
		}
		if !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("ParseDDL(%q): %v does not wrap ErrInvalidSchema", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDDL(%q):\n got %v\nwant it to contain %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseDDL(f *testing.F) {
	for _, s := range []string{
		"id long, ts timestamp, device string, temp double",
		"a decimal(10,2) NOT NULL, t array<map<string,struct<x:int>>>",
		"`we``ird` int COMMENT 'c'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseDDL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("error does not wrap ErrInvalidSchema: %v", err)
			}
			return
		}
		js, err := MarshalSchema(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSchema(js); err != nil {
			t.Fatalf("parsed DDL %q does not round-trip: %v", s, err)
		}
	})
}
