package txlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// ParseCommit decodes a commit file: newline-delimited JSON, one action per
// line. Blank lines (and a missing final newline, and CRLF line ends) are
// accepted. Unknown fields are ignored; a line whose only key is an unknown
// action kind yields an Action with just Unknown set. A line that is not a
// JSON object, holds a null or malformed known action, or holds no key at all
// is an error wrapping ErrCorruptLog that names the 1-based line number.
func ParseCommit(data []byte) ([]Action, error) {
	return parseCommitLines(data, parseActionLine)
}

// parseCommitLines is ParseCommit with parseLine decoding each line (the
// tests check the fast decoder against the encoding/json one through it).
func parseCommitLines(data []byte, parseLine func([]byte) (Action, error)) ([]Action, error) {
	actions := make([]Action, 0, bytes.Count(data, []byte{'\n'})+1)
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		a, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrCorruptLog, lineNo, err)
		}
		actions = append(actions, a)
	}
	return actions, nil
}

// errNotAction is the cause of a line that decodes to no action.
var errNotAction = errors.New("not a delta action")

func parseActionLine(line []byte) (Action, error) {
	if a, ok := fastAction(line); ok {
		return a, nil
	}
	return parseActionLineJSON(line)
}

// parseActionLineJSON decodes one line with encoding/json: the reference
// semantics the fast path (codec_fast.go) must match.
func parseActionLineJSON(line []byte) (Action, error) {
	var a Action
	if line[0] != '{' {
		return a, fmt.Errorf("%w: not a JSON object", errNotAction)
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return Action{}, err
	}
	if a.count() > 0 {
		return a, nil
	}
	// No known action decoded: either an unknown kind (ignored), a known
	// kind set to null, or an empty object.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Action{}, err
	}
	if len(raw) == 0 {
		return Action{}, fmt.Errorf("%w: empty object", errNotAction)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if knownActionKind(k) {
			return Action{}, fmt.Errorf("%w: %q is null", errNotAction, k)
		}
		if k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return Action{}, fmt.Errorf("%w: empty action name", errNotAction)
	}
	sort.Strings(keys)
	return Action{Unknown: keys[0]}, nil
}

var actionKinds = map[string]bool{
	"protocol": true, "metaData": true, "add": true, "remove": true, "txn": true,
	"commitInfo": true, "domainMetadata": true, "cdc": true, "sidecar": true,
	"checkpointMetadata": true,
}

func knownActionKind(k string) bool {
	if actionKinds[k] {
		return true
	}
	// encoding/json matches keys case-insensitively; so does this check.
	for kind := range actionKinds {
		if len(kind) == len(k) && bytes.EqualFold([]byte(kind), []byte(k)) {
			return true
		}
	}
	return false
}

// count returns how many action kinds are set.
func (a *Action) count() int {
	n := 0
	for _, set := range []bool{
		a.Protocol != nil, a.MetaData != nil, a.Add != nil, a.Remove != nil,
		a.Txn != nil, a.CommitInfo != nil, a.DomainMetadata != nil, a.CDC != nil,
		a.Sidecar != nil, a.CheckpointMetadata != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

// EncodeCommit encodes actions as a commit file: one JSON object per line in
// the given order, each line terminated by "\n". HTML characters are not
// escaped. Every action must have exactly one kind set; an Action carrying
// only Unknown cannot be written (its content was not kept) and is an error.
// The protocol requires commitInfo to be the first action when in-commit
// timestamps are enabled: callers order actions accordingly.
func EncodeCommit(actions []Action) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range actions {
		a := &actions[i]
		switch n := a.count(); {
		case n == 0 && a.Unknown != "":
			return nil, fmt.Errorf("encode action %d: unknown action kind %q cannot be written", i, a.Unknown)
		case n != 1:
			return nil, fmt.Errorf("encode action %d: %d action kinds set, want exactly 1", i, n)
		}
		if err := enc.Encode(a); err != nil {
			return nil, fmt.Errorf("encode action %d: %w", i, err)
		}
	}
	return buf.Bytes(), nil
}

// commitInfoKnown is CommitInfo without its methods, for the default codec.
type commitInfoKnown CommitInfo

// commitInfoFields lists the JSON names of CommitInfo's typed fields.
var commitInfoFields = map[string]bool{
	"inCommitTimestamp": true, "timestamp": true, "operation": true,
	"operationParameters": true, "readVersion": true, "isolationLevel": true,
	"isBlindAppend": true, "operationMetrics": true, "engineInfo": true, "txnId": true,
}

// UnmarshalJSON decodes a commitInfo object. Typed fields are decoded when
// their JSON type fits; every other field (and a typed field whose value has
// an unexpected type, since commitInfo is free-form) is kept in Extra.
func (c *CommitInfo) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = CommitInfo{}
	for k, v := range raw {
		if commitInfoFields[k] && c.decodeField(k, v) == nil {
			continue
		}
		if c.Extra == nil {
			c.Extra = make(map[string]json.RawMessage)
		}
		c.Extra[k] = v
	}
	return nil
}

func (c *CommitInfo) decodeField(k string, v json.RawMessage) error {
	switch k {
	case "inCommitTimestamp":
		return decodeInto(&c.InCommitTimestamp, v)
	case "timestamp":
		return decodeInto(&c.Timestamp, v)
	case "operation":
		return decodeInto(&c.Operation, v)
	case "operationParameters":
		return decodeInto(&c.OperationParameters, v)
	case "readVersion":
		return decodeInto(&c.ReadVersion, v)
	case "isolationLevel":
		return decodeInto(&c.IsolationLevel, v)
	case "isBlindAppend":
		return decodeInto(&c.IsBlindAppend, v)
	case "operationMetrics":
		return decodeInto(&c.OperationMetrics, v)
	case "engineInfo":
		return decodeInto(&c.EngineInfo, v)
	case "txnId":
		return decodeInto(&c.TxnID, v)
	}
	return errNotAction
}

// decodeInto decodes v and stores it in *dst only when decoding succeeds.
func decodeInto[T any](dst *T, v json.RawMessage) error {
	var t T
	if err := json.Unmarshal(v, &t); err != nil {
		return err
	}
	*dst = t
	return nil
}

// marshalNoEscape is json.Marshal without HTML escaping (paths may hold
// '&', '<', '>'), and without the trailing newline of json.Encoder.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// MarshalJSON encodes the typed fields (omitting empty ones) merged with
// Extra; a typed field wins over an Extra entry of the same name. Keys are
// written in sorted order, except that inCommitTimestamp comes first when set
// (the protocol requires it to be readable cheaply).
func (c CommitInfo) MarshalJSON() ([]byte, error) {
	known, err := marshalNoEscape(commitInfoKnown(c))
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(known, &fields); err != nil {
		return nil, err
	}
	for k, v := range c.Extra {
		if _, ok := fields[k]; !ok {
			fields[k] = v
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "inCommitTimestamp") != (keys[j] == "inCommitTimestamp") {
			return keys[i] == "inCommitTimestamp"
		}
		return keys[i] < keys[j]
	})
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshalNoEscape(k)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// metadataJSON is Metadata without its methods.
type metadataJSON Metadata

// MarshalJSON writes nil partitionColumns, configuration and format options
// as empty JSON collections (Spark rejects nulls there).
func (m Metadata) MarshalJSON() ([]byte, error) {
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.Format.Provider == "" {
		m.Format.Provider = "parquet"
	}
	return marshalNoEscape(metadataJSON(m))
}

// addJSON is Add without its methods.
type addJSON Add

// MarshalJSON writes a nil partitionValues as {} (the field is required).
func (a Add) MarshalJSON() ([]byte, error) {
	if a.PartitionValues == nil {
		a.PartitionValues = map[string]*string{}
	}
	return marshalNoEscape(addJSON(a))
}

// cdcJSON is CDC without its methods.
type cdcJSON CDC

// MarshalJSON writes a nil partitionValues as {} (the field is required).
func (c CDC) MarshalJSON() ([]byte, error) {
	if c.PartitionValues == nil {
		c.PartitionValues = map[string]*string{}
	}
	return marshalNoEscape(cdcJSON(c))
}

// ParseStats decodes an add.stats JSON string. An empty string means "no
// statistics" and returns (nil, nil). Malformed JSON is an error wrapping
// ErrCorruptLog; callers that only use stats for skipping may treat it as
// "no statistics".
func ParseStats(s string) (*Stats, error) {
	if s == "" {
		return nil, nil
	}
	var st Stats
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return nil, fmt.Errorf("%w: parse stats: %w", ErrCorruptLog, err)
	}
	return &st, nil
}

// ParsedStats returns the file's statistics: StatsParsed when a checkpoint
// provided them in typed form, else the parsed Stats JSON string; (nil, nil)
// when the file has none.
func (a *Add) ParsedStats() (*Stats, error) {
	if a.StatsParsed != nil {
		return a.StatsParsed, nil
	}
	st, err := ParseStats(a.Stats)
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", a.Path, err)
	}
	return st, nil
}

// MarshalJSON writes readerFeatures (writerFeatures) exactly when the reader
// (writer) version is a table-features version, as an empty list if need
// be: Spark expects the lists to be present at reader 3 / writer 7 and
// absent below.
func (p Protocol) MarshalJSON() ([]byte, error) {
	out := struct {
		MinReaderVersion int32     `json:"minReaderVersion"`
		MinWriterVersion int32     `json:"minWriterVersion"`
		ReaderFeatures   *[]string `json:"readerFeatures,omitempty"`
		WriterFeatures   *[]string `json:"writerFeatures,omitempty"`
	}{MinReaderVersion: p.MinReaderVersion, MinWriterVersion: p.MinWriterVersion}
	if p.MinReaderVersion >= TableFeaturesReaderVersion {
		rf := p.ReaderFeatures
		if rf == nil {
			rf = []string{}
		}
		out.ReaderFeatures = &rf
	}
	if p.MinWriterVersion >= TableFeaturesWriterVersion {
		wf := p.WriterFeatures
		if wf == nil {
			wf = []string{}
		}
		out.WriterFeatures = &wf
	}
	return marshalNoEscape(out)
}
