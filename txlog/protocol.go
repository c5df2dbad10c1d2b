package txlog

import (
	"fmt"
	"slices"
	"strings"
)

// Table feature names, as written in protocol.readerFeatures and
// protocol.writerFeatures.
const (
	// Reader-writer features.
	FeatureColumnMapping       = "columnMapping"
	FeatureDeletionVectors     = "deletionVectors"
	FeatureTimestampNTZ        = "timestampNtz"
	FeatureV2Checkpoint        = "v2Checkpoint"
	FeatureVacuumProtocolCheck = "vacuumProtocolCheck"
	FeatureTypeWidening        = "typeWidening"
	FeatureVariantType         = "variantType"
	FeatureCatalogManaged      = "catalogManaged"
	// Writer-only features.
	FeatureAppendOnly          = "appendOnly"
	FeatureInvariants          = "invariants"
	FeatureCheckConstraints    = "checkConstraints"
	FeatureChangeDataFeed      = "changeDataFeed"
	FeatureGeneratedColumns    = "generatedColumns"
	FeatureIdentityColumns     = "identityColumns"
	FeatureAllowColumnDefaults = "allowColumnDefaults"
	FeatureDomainMetadata      = "domainMetadata"
	FeatureRowTracking         = "rowTracking"
	FeatureClustering          = "clustering"
	FeatureInCommitTimestamp   = "inCommitTimestamp"
	FeatureIcebergCompatV1     = "icebergCompatV1"
	FeatureIcebergCompatV2     = "icebergCompatV2"
)

// Protocol version limits: reader 3 and writer 7 are the table-features
// versions, whose feature lists replace the implied features of the legacy
// versions.
const (
	TableFeaturesReaderVersion = 3
	TableFeaturesWriterVersion = 7
)

// readerWriterFeatures are the features that must appear in readerFeatures
// (and writerFeatures) when enabled through table features.
var readerWriterFeatures = map[string]bool{
	FeatureColumnMapping: true, FeatureDeletionVectors: true, FeatureTimestampNTZ: true,
	FeatureV2Checkpoint: true, FeatureVacuumProtocolCheck: true, FeatureTypeWidening: true,
	FeatureVariantType: true, FeatureCatalogManaged: true,
}

// IsReaderWriterFeature reports whether the named feature constrains readers
// (it is listed in readerFeatures as well as writerFeatures).
func IsReaderWriterFeature(name string) bool { return readerWriterFeatures[name] }

// readableFeatures are the reader features this project implements.
var readableFeatures = map[string]bool{
	FeatureColumnMapping: true, FeatureDeletionVectors: true, FeatureTimestampNTZ: true,
	FeatureV2Checkpoint: true, FeatureVacuumProtocolCheck: true, FeatureTypeWidening: true,
}

// writableFeatures are the writer features this project honours when
// committing. invariants and checkConstraints are accepted here because the
// feature being supported constrains nothing by itself: the table engine
// refuses writes when a column carries delta.invariants or a
// delta.constraints.* property is set.
var writableFeatures = map[string]bool{
	FeatureAppendOnly: true, FeatureInvariants: true, FeatureTimestampNTZ: true,
	FeatureInCommitTimestamp: true, FeatureChangeDataFeed: true, FeatureDomainMetadata: true,
	FeatureVacuumProtocolCheck: true, FeatureCheckConstraints: true,
}

// legacyWriterFeatures lists the features each legacy writer version adds
// to the previous one.
var legacyWriterFeatures = [...][]string{
	2: {FeatureAppendOnly, FeatureInvariants},
	3: {FeatureCheckConstraints},
	4: {FeatureChangeDataFeed, FeatureGeneratedColumns},
	5: {FeatureColumnMapping},
	6: {FeatureIdentityColumns},
}

// ReaderFeatureList returns the reader features the protocol enables: the
// readerFeatures list at reader version 3 or more, columnMapping at legacy
// reader version 2, nothing at version 1.
func (p *Protocol) ReaderFeatureList() []string {
	switch {
	case p.MinReaderVersion >= TableFeaturesReaderVersion:
		return slices.Clone(p.ReaderFeatures)
	case p.MinReaderVersion == 2:
		return []string{FeatureColumnMapping}
	}
	return nil
}

// WriterFeatureList returns the writer features the protocol enables: the
// writerFeatures list at writer version 7 or more, else every feature the
// legacy writer version implies.
func (p *Protocol) WriterFeatureList() []string {
	if p.MinWriterVersion >= TableFeaturesWriterVersion {
		return slices.Clone(p.WriterFeatures)
	}
	var out []string
	for v := 2; v <= int(p.MinWriterVersion) && v < len(legacyWriterFeatures); v++ {
		out = append(out, legacyWriterFeatures[v]...)
	}
	return out
}

// SupportsReaderFeature reports whether the protocol enables the named
// reader feature (explicitly at reader version 3, or implied by a legacy
// reader version).
func (p *Protocol) SupportsReaderFeature(name string) bool {
	return slices.Contains(p.ReaderFeatureList(), name)
}

// SupportsWriterFeature reports whether the protocol enables the named
// writer feature (explicitly at writer version 7, or implied by a legacy
// writer version).
func (p *Protocol) SupportsWriterFeature(name string) bool {
	return slices.Contains(p.WriterFeatureList(), name)
}

// SupportsFeature reports whether the protocol enables the named feature
// for readers or writers.
func (p *Protocol) SupportsFeature(name string) bool {
	return p.SupportsReaderFeature(name) || p.SupportsWriterFeature(name)
}

// CheckReadable returns nil when this project can read a table with
// protocol p, else an error wrapping ErrUnsupportedFeature that names the
// unsupported reader version and/or every unsupported reader feature.
func CheckReadable(p Protocol) error {
	if problems := readProblems(p); len(problems) > 0 {
		return fmt.Errorf("%w: cannot read table: %s", ErrUnsupportedFeature, strings.Join(problems, "; "))
	}
	return nil
}

func readProblems(p Protocol) []string {
	var problems []string
	if p.MinReaderVersion < 1 || p.MinReaderVersion > TableFeaturesReaderVersion {
		problems = append(problems, fmt.Sprintf("reader version %d (supported: 1..%d)", p.MinReaderVersion, TableFeaturesReaderVersion))
	}
	// Name unknown listed features even when the version is already too
	// high: that is what a user needs to know.
	var features []string
	if p.MinReaderVersion >= TableFeaturesReaderVersion {
		features = p.ReaderFeatures
	}
	if bad := unsupported(features, readableFeatures); len(bad) > 0 {
		problems = append(problems, "reader features "+strings.Join(bad, ", "))
	}
	return problems
}

// CheckWritable returns nil when this project can commit to a table with
// protocol p, else an error wrapping ErrUnsupportedFeature naming the
// unsupported versions and features. A writer must be able to read the
// table, so every CheckReadable problem is reported too. At writer version 7
// every listed writer feature must be one this project honours. At legacy
// writer versions the implied features generatedColumns (4), columnMapping
// (5) and identityColumns (6) are refused too: they are enabled by the
// version alone.
func CheckWritable(p Protocol) error {
	problems := readProblems(p)
	if p.MinWriterVersion < 1 || p.MinWriterVersion > TableFeaturesWriterVersion {
		problems = append(problems, fmt.Sprintf("writer version %d (supported: 1..%d)", p.MinWriterVersion, TableFeaturesWriterVersion))
	}
	// Reader-writer features must be maintained by writers too (e.g. a
	// writer must not break deletion vectors), so both lists count.
	all := append(p.WriterFeatureList(), p.ReaderFeatureList()...)
	if bad := unsupported(all, writableFeatures); len(bad) > 0 {
		problems = append(problems, "writer features "+strings.Join(bad, ", "))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: cannot write table: %s", ErrUnsupportedFeature, strings.Join(problems, "; "))
}

// unsupported returns the names in features that are not in ok, deduplicated,
// in their original order.
func unsupported(features []string, ok map[string]bool) []string {
	var bad []string
	for _, f := range features {
		if !ok[f] && !slices.Contains(bad, f) {
			bad = append(bad, f)
		}
	}
	return bad
}

// legacyVersions returns the legacy reader and writer versions that imply
// a feature; ok is false for features that exist only as table features.
func legacyVersions(feature string) (reader, writer int32, ok bool) {
	for v, fs := range legacyWriterFeatures {
		if slices.Contains(fs, feature) {
			reader = 1
			if feature == FeatureColumnMapping {
				reader = 2
			}
			return reader, int32(v), true
		}
	}
	return 0, 0, false
}

// MinProtocolFor returns the lowest protocol that supports every named
// feature. When all of them are implied by legacy versions it returns the
// lowest legacy versions (e.g. changeDataFeed -> reader 1, writer 4;
// columnMapping -> reader 2, writer 5; none -> 1, 1). Otherwise it returns a
// table-features protocol: writer 7 with every feature in writerFeatures,
// and reader 3 with the reader-writer features in readerFeatures when there
// are any, else reader 1 (e.g. inCommitTimestamp -> reader 1, writer 7,
// writerFeatures [inCommitTimestamp]). Names this package does not know are
// treated as writer-only features. Feature lists keep the given order,
// without duplicates.
func MinProtocolFor(features []string) Protocol {
	p := Protocol{MinReaderVersion: 1, MinWriterVersion: 1}
	legacy := true
	for _, f := range features {
		r, w, ok := legacyVersions(f)
		if !ok {
			legacy = false
			break
		}
		p.MinReaderVersion = max(p.MinReaderVersion, r)
		p.MinWriterVersion = max(p.MinWriterVersion, w)
	}
	if legacy {
		return p
	}
	p = Protocol{MinReaderVersion: 1, MinWriterVersion: TableFeaturesWriterVersion, WriterFeatures: []string{}}
	for _, f := range features {
		if slices.Contains(p.WriterFeatures, f) {
			continue
		}
		p.WriterFeatures = append(p.WriterFeatures, f)
		if readerWriterFeatures[f] {
			p.MinReaderVersion = TableFeaturesReaderVersion
			p.ReaderFeatures = append(p.ReaderFeatures, f)
		}
	}
	return p
}
