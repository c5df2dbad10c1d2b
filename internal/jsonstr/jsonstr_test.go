package jsonstr

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// checkString compares Scan and AppendUnescaped on the JSON text in with
// encoding/json: the same strings accepted, the same value decoded.
func checkString(t *testing.T, in []byte) {
	t.Helper()
	if len(in) == 0 || in[0] != '"' || !utf8.Valid(in) {
		return
	}
	end, esc, _, err := Scan(in, 0)
	var want string
	jerr := json.Unmarshal(in[:max(end, 1)], &want)
	if err != nil {
		// No prefix of in is a string encoding/json accepts.
		for k := 2; k <= len(in); k++ {
			var s string
			if json.Unmarshal(in[:k], &s) == nil {
				t.Fatalf("Scan(%q) = %v at %d; encoding/json accepts %q", in, err, end, in[:k])
			}
		}
		return
	}
	if jerr != nil {
		t.Fatalf("Scan(%q) accepts %q; encoding/json: %v", in, in[:end], jerr)
	}
	got := string(AppendUnescaped(nil, in[1:end-1]))
	if got != want {
		t.Fatalf("AppendUnescaped(%q) = %q, encoding/json %q", in[:end], got, want)
	}
	if !esc && got != string(in[1:end-1]) {
		t.Fatalf("%q: no escapes reported, but decoding changed it", in[:end])
	}
}

var corpus = []string{
	`""`, `"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud800\ud800\udc00"`,
	`"\ud83d\ude00\ude00"`, `"é中😀"`, `"\u12"`, `"\x"`, "\"a\tb\"", `"abc`, `"abc\`,
	`"\u00zz"`, `"tail" rest`,
}

func TestAgainstEncodingJSON(t *testing.T) {
	for _, c := range corpus {
		checkString(t, []byte(c))
	}
}

func TestScanErrors(t *testing.T) {
	for in, want := range map[string]struct {
		err error
		end int
	}{
		`"abc`:        {ErrUnterminated, 4},
		`"abc\`:       {ErrUnterminated, 5},
		`"a\x"`:       {ErrEscape, 2},
		`"a\u12"`:     {ErrEscape, 2},
		"\"a\nb\"":    {ErrControl, 2},
		`"ok" "more"`: {nil, 4},
	} {
		end, _, _, err := Scan([]byte(in), 0)
		if !errors.Is(err, want.err) || end != want.end {
			t.Errorf("Scan(%q) = %d, %v; want %d, %v", in, end, err, want.end, want.err)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, c := range corpus {
		f.Add([]byte(c))
	}
	f.Fuzz(checkString)
}
