package txlog

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// fixtureProtocol returns the last protocol action of a fixture's commits.
func fixtureProtocol(t *testing.T, elem ...string) Protocol {
	t.Helper()
	dir := filepath.Join(testutil.Testdata(t, elem...), "_delta_log")
	var p *Protocol
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, ok := ParseLogFile(LogDir + e.Name())
		if !ok || f.Kind != KindCommit {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		acts, err := ParseCommit(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a.Protocol != nil {
				p = a.Protocol
			}
		}
	}
	if p == nil {
		t.Fatalf("no protocol in %s", dir)
	}
	return *p
}

func TestCheckReadableFixtures(t *testing.T) {
	p := fixtureProtocol(t, "delta-rs", "simple_table_features")
	err := CheckReadable(p)
	if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "blahabl") ||
		!strings.Contains(err.Error(), "reader version 5") {
		t.Fatalf("simple_table_features: %v", err)
	}
	// Only the unknown reader feature is named, not the supported ones.
	if strings.Contains(err.Error(), "deletionVectors") {
		t.Fatalf("names supported features: %v", err)
	}
	err = CheckWritable(p)
	for _, want := range []string{"blahabl", "generatedColumns", "identityColumns", "rowTracking", "icebergCompatV1", "writer features"} {
		if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckWritable(simple_table_features) = %v, want it to name %s", err, want)
		}
	}

	p = fixtureProtocol(t, "delta-golden", "deltalog-invalid-protocol-version", "delta")
	if err := CheckReadable(p); !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), "reader version 99") {
		t.Fatalf("invalid protocol version: %v", err)
	}

	for _, fx := range [][]string{
		{"delta-golden", "checkpoint", "delta"},
		{"delta-golden", "v2-checkpoint-json", "delta"},
		{"delta-golden", "dv-with-columnmapping", "delta"},
		{"delta-golden", "table-with-columnmapping-mode-name", "delta"},
		{"delta-rs", "checkpoint-v2-table"},
		{"delta-rs", "cdc_ict_table"},
	} {
		if err := CheckReadable(fixtureProtocol(t, fx...)); err != nil {
			t.Errorf("%v: %v", fx, err)
		}
	}
	// cdc_ict_table is writable (writer 7: inCommitTimestamp, changeDataFeed,
	// invariants, appendOnly); a deletion-vector table is not.
	if err := CheckWritable(fixtureProtocol(t, "delta-rs", "cdc_ict_table")); err != nil {
		t.Errorf("cdc_ict_table: %v", err)
	}
	if err := CheckWritable(fixtureProtocol(t, "delta-golden", "dv-with-columnmapping", "delta")); !errors.Is(err, ErrUnsupportedFeature) ||
		!strings.Contains(err.Error(), "deletionVectors") || !strings.Contains(err.Error(), "columnMapping") {
		t.Errorf("dv-with-columnmapping writable: %v", err)
	}
}

func TestProtocolFeatures(t *testing.T) {
	for _, tc := range []struct {
		p              Protocol
		reader, writer []string
		readErr        string // "" = readable
		writeErr       string // "" = writable
	}{
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 1}, nil, nil, "", ""},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, nil, []string{"appendOnly", "invariants"}, "", ""},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 3}, nil, []string{"appendOnly", "invariants", "checkConstraints"}, "", ""},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 4}, nil, []string{"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns"}, "", "generatedColumns"},
		{Protocol{MinReaderVersion: 2, MinWriterVersion: 5}, []string{"columnMapping"}, []string{"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns", "columnMapping"}, "", "generatedColumns, columnMapping"},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 6}, nil, []string{"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns", "columnMapping", "identityColumns"}, "", "identityColumns"},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"inCommitTimestamp", "domainMetadata"}}, nil, []string{"inCommitTimestamp", "domainMetadata"}, "", ""},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz", "appendOnly"}}, []string{"timestampNtz"}, []string{"timestampNtz", "appendOnly"}, "", ""},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"typeWidening", "vacuumProtocolCheck"}, WriterFeatures: []string{"typeWidening", "vacuumProtocolCheck"}}, []string{"typeWidening", "vacuumProtocolCheck"}, []string{"typeWidening", "vacuumProtocolCheck"}, "", "writer features typeWidening"},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"variantType"}, WriterFeatures: []string{"variantType"}}, []string{"variantType"}, []string{"variantType"}, "reader features variantType", "variantType"},
		{Protocol{MinReaderVersion: 4, MinWriterVersion: 7}, nil, nil, "reader version 4", "reader version 4"},
		{Protocol{MinReaderVersion: 0, MinWriterVersion: 2}, nil, []string{"appendOnly", "invariants"}, "reader version 0", "reader version 0"},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 8}, nil, nil, "", "writer version 8"},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"rowTracking", "domainMetadata", "clustering"}}, nil, []string{"rowTracking", "domainMetadata", "clustering"}, "", "writer features rowTracking, clustering"},
	} {
		p := tc.p
		if got := p.ReaderFeatureList(); !reflect.DeepEqual(got, tc.reader) && len(got)+len(tc.reader) > 0 {
			t.Errorf("%+v: reader features %v, want %v", p, got, tc.reader)
		}
		if got := p.WriterFeatureList(); !reflect.DeepEqual(got, tc.writer) && len(got)+len(tc.writer) > 0 {
			t.Errorf("%+v: writer features %v, want %v", p, got, tc.writer)
		}
		for _, f := range tc.reader {
			if !p.SupportsReaderFeature(f) || !p.SupportsFeature(f) {
				t.Errorf("%+v: SupportsReaderFeature(%s) false", p, f)
			}
		}
		for _, f := range tc.writer {
			if !p.SupportsWriterFeature(f) {
				t.Errorf("%+v: SupportsWriterFeature(%s) false", p, f)
			}
		}
		check := func(name string, err error, want string) {
			t.Helper()
			if want == "" && err != nil {
				t.Errorf("%s(%+v) = %v", name, p, err)
			}
			if want != "" && (!errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), want)) {
				t.Errorf("%s(%+v) = %v, want ErrUnsupportedFeature naming %q", name, p, err, want)
			}
		}
		check("CheckReadable", CheckReadable(p), tc.readErr)
		check("CheckWritable", CheckWritable(p), tc.writeErr)
	}
	p := Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
	if p.SupportsReaderFeature(FeatureColumnMapping) || p.SupportsWriterFeature(FeatureChangeDataFeed) {
		t.Error("legacy (1,2) supports too much")
	}
}

func TestMinProtocolFor(t *testing.T) {
	for _, tc := range []struct {
		features []string
		want     Protocol
	}{
		{nil, Protocol{MinReaderVersion: 1, MinWriterVersion: 1}},
		{[]string{"appendOnly"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{[]string{"invariants", "appendOnly"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{[]string{"checkConstraints"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 3}},
		{[]string{"changeDataFeed", "appendOnly"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 4}},
		{[]string{"columnMapping"}, Protocol{MinReaderVersion: 2, MinWriterVersion: 5}},
		{[]string{"identityColumns"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 6}},
		{[]string{"inCommitTimestamp"}, Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"inCommitTimestamp"}}},
		{[]string{"appendOnly", "inCommitTimestamp", "appendOnly", "domainMetadata"}, Protocol{
			MinReaderVersion: 1, MinWriterVersion: 7,
			WriterFeatures: []string{"appendOnly", "inCommitTimestamp", "domainMetadata"},
		}},
		{[]string{"timestampNtz"}, Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz"}}},
		{[]string{"inCommitTimestamp", "deletionVectors", "columnMapping"}, Protocol{
			MinReaderVersion: 3, MinWriterVersion: 7,
			ReaderFeatures: []string{"deletionVectors", "columnMapping"}, WriterFeatures: []string{"inCommitTimestamp", "deletionVectors", "columnMapping"},
		}},
	} {
		got := MinProtocolFor(tc.features)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MinProtocolFor(%v) = %+v, want %+v", tc.features, got, tc.want)
		}
		for _, f := range tc.features {
			if !got.SupportsFeature(f) {
				t.Errorf("MinProtocolFor(%v) = %+v does not support %s", tc.features, got, f)
			}
		}
	}
	// The protocol Kappa writes for new tables encodes as Spark expects.
	enc, err := EncodeCommit([]Action{{Protocol: new(MinProtocolFor([]string{"inCommitTimestamp", "appendOnly", "invariants"}))}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["inCommitTimestamp","appendOnly","invariants"]}}` + "\n"; string(enc) != want {
		t.Fatalf("encoded %s", enc)
	}
}

func TestProtocolJSON(t *testing.T) {
	for _, tc := range []struct {
		p    Protocol
		want string
	}{
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 2, WriterFeatures: []string{"ignored"}}, `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7}, `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":[],"writerFeatures":[]}}`},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"appendOnly"}}, `{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["appendOnly"]}}`},
	} {
		enc, err := EncodeCommit([]Action{{Protocol: &tc.p}})
		if err != nil || string(enc) != tc.want+"\n" {
			t.Errorf("encode %+v = %s, %v; want %s", tc.p, enc, err, tc.want)
		}
	}
}
