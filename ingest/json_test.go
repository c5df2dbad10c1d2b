package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
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
