package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/internal/pq"
)

var jsonCorpus = []string{
	`{}`, `[]`, `{"a":1}`, ` {"a" : [1, -2.5e+3, 0, -0, 1E2, true, false, null, "x"]} `,
	`{"s":"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 end"}`,
	`{"nested":{"a":{"b":[{"c":[]}]}}}`, `"str"`, `123`, `-0.5`, `null`,
	`{"big":12345678901234567890123}`, `{"dup":1,"dup":2}`, `{"u":"\u0000"}`,
	`{"bad":"\ud800"}`, `{"bad":"\udc00x"}`, `{"pair":"\ud83d\u0041"}`,
	// invalid
	``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `1e`, `-`, `{"a":1} x`,
	`tru`, `nul`, `"abc`, `"\x"`, `"\u12"`, "\"a\x01\"", `{1:2}`, `[1 2]`, `{"a":1 "b":2}`,
	`{"a":"b"}}`, `+1`, `.5`, `NaN`,
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range jsonCorpus {
		checkJSON(t, []byte(in))
	}
}

func checkJSON(t *testing.T, in []byte) {
	t.Helper()
	got, gerr := parseJSON(in)
	if !json.Valid(in) {
		if gerr == nil {
			t.Errorf("%q: parseJSON accepts invalid JSON: %#v", in, got)
		}
		if _, _, err := parseJSONSlots(in, map[string]int{"a": 0}, []string{"a"}, &keyOrder{}, []any{pq.Missing}); err == nil {
			t.Errorf("%q: parseJSONSlots accepts invalid JSON", in)
		}
		return
	}
	if gerr != nil {
		t.Errorf("%q: parseJSON rejects valid JSON: %v", in, gerr)
		return
	}
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	var want any
	if err := d.Decode(&want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q: parseJSON %#v, encoding/json %#v", in, got, want)
	}
	checkJSONSlots(t, in, want)
}

// checkJSONSlots checks the slot mode against the map mode: for a top-level
// object, with every other key known, the slots hold exactly the map's
// values of the known keys (twice, the second time through the key-order
// memory) and the unknown counts agree; other values parse alike.
func checkJSONSlots(t *testing.T, in []byte, want any) {
	t.Helper()
	obj, isObj := want.(map[string]any)
	var names []string
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	idx := map[string]int{}
	keys := map[string]string{}
	for i, k := range names {
		if i%2 == 0 {
			idx[k] = len(idx)
			keys[k] = k
		}
	}
	slotNames := make([]string, len(idx))
	for k, i := range idx {
		slotNames[i] = k
	}
	_, wantUnknown, err := parseJSONInto(in, keys, nil)
	if err != nil {
		t.Fatalf("%q: parseJSONInto: %v", in, err)
	}
	order := &keyOrder{}
	for round := range 2 {
		slots := make([]any, len(idx))
		for i := range slots {
			slots[i] = pq.Missing
		}
		v, unknown, err := parseJSONSlots(in, idx, slotNames, order, slots)
		if err != nil {
			t.Fatalf("%q: parseJSONSlots: %v", in, err)
		}
		if !isObj {
			if !reflect.DeepEqual(v, want) {
				t.Errorf("%q: parseJSONSlots %#v, encoding/json %#v", in, v, want)
			}
			return
		}
		if unknown != wantUnknown {
			t.Errorf("%q round %d: %d unknown keys, map mode says %d", in, round, unknown, wantUnknown)
		}
		for k, i := range idx {
			if !reflect.DeepEqual(slots[i], obj[k]) {
				t.Errorf("%q round %d: slot %q = %#v, want %#v", in, round, k, slots[i], obj[k])
			}
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, in := range jsonCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !utf8.Valid(in) {
			// encoding/json rewrites invalid UTF-8 to U+FFFD; parseJSON keeps
			// the bytes (the writer then rejects them for string columns).
			_, _ = parseJSON(in)
			return
		}
		checkJSON(t, in)
	})
}
