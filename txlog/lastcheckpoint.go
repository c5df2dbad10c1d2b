package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kappa-lake/kappa/internal/store"
)

// LastCheckpoint is the content of _delta_log/_last_checkpoint: a hint
// naming the newest checkpoint. It may be stale or wrong; readers verify it
// against the listing.
type LastCheckpoint struct {
	// Version is the checkpoint's table version.
	Version int64 `json:"version"`
	// Size is the number of actions in the checkpoint.
	Size int64 `json:"size"`
	// Parts is the number of parts of a multi-part checkpoint (nil: one file).
	Parts *int `json:"parts,omitempty"`
	// SizeInBytes is the total size of the checkpoint files. Old delta-rs
	// versions wrote it as "size_in_bytes"; both are read.
	SizeInBytes *int64 `json:"sizeInBytes,omitempty"`
	// NumOfAddFiles is the number of add actions in the checkpoint.
	NumOfAddFiles *int64 `json:"numOfAddFiles,omitempty"`
	// CheckpointSchema is the checkpoint's Parquet schema as a Delta schema
	// JSON object (kept raw).
	CheckpointSchema json.RawMessage `json:"checkpointSchema,omitempty"`
	// Checksum is the MD5 checksum of the other fields, as Spark writes it.
	Checksum string `json:"checksum,omitempty"`
	// V2Checkpoint describes a V2 checkpoint (UUID-named file).
	V2Checkpoint *V2CheckpointInfo `json:"v2Checkpoint,omitempty"`
	// Tags are free-form metadata.
	Tags map[string]string `json:"tags,omitempty"`
}

// V2CheckpointInfo is _last_checkpoint.v2Checkpoint.
type V2CheckpointInfo struct {
	// Path is the checkpoint file name relative to _delta_log/.
	Path             string `json:"path"`
	SizeInBytes      int64  `json:"sizeInBytes"`
	ModificationTime int64  `json:"modificationTime"`
	// NonFileActions are the checkpoint's non-file actions (protocol,
	// metaData, txn, domainMetadata, checkpointMetadata), when present.
	NonFileActions []Action `json:"nonFileActions,omitempty"`
	// SidecarFiles are the checkpoint's sidecar actions, when present.
	SidecarFiles []Sidecar `json:"sidecarFiles,omitempty"`
}

// UnmarshalJSON decodes _last_checkpoint, accepting the legacy
// "size_in_bytes" name. "version" is required.
func (lc *LastCheckpoint) UnmarshalJSON(data []byte) error {
	type plain LastCheckpoint
	var aux struct {
		plain
		Version           *int64 `json:"version"`
		LegacySizeInBytes *int64 `json:"size_in_bytes"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	if aux.Version == nil {
		return errors.New(`missing "version"`)
	}
	if *aux.Version < 0 {
		return fmt.Errorf("negative version %d", *aux.Version)
	}
	*lc = LastCheckpoint(aux.plain)
	lc.Version = *aux.Version
	if lc.SizeInBytes == nil {
		lc.SizeInBytes = aux.LegacySizeInBytes
	}
	return nil
}

// ParseLastCheckpoint decodes the content of _last_checkpoint. Errors wrap
// ErrCorruptLog.
func ParseLastCheckpoint(data []byte) (*LastCheckpoint, error) {
	var lc LastCheckpoint
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: _last_checkpoint is empty", ErrCorruptLog)
	}
	if err := json.Unmarshal(data, &lc); err != nil {
		return nil, fmt.Errorf("%w: _last_checkpoint: %w", ErrCorruptLog, err)
	}
	return &lc, nil
}

// ReadLastCheckpoint reads _delta_log/_last_checkpoint. It returns (nil, nil)
// when the file does not exist and an error wrapping ErrCorruptLog when it
// cannot be parsed.
func ReadLastCheckpoint(ctx context.Context, st store.Store) (*LastCheckpoint, error) {
	data, err := st.Get(ctx, LastCheckpointKey)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read _last_checkpoint: %w", err)
	}
	return ParseLastCheckpoint(data)
}

// WriteLastCheckpoint (over)writes _delta_log/_last_checkpoint atomically.
func WriteLastCheckpoint(ctx context.Context, st store.Store, lc *LastCheckpoint) error {
	if lc == nil || lc.Version < 0 {
		return errors.New("write _last_checkpoint: invalid checkpoint descriptor")
	}
	data, err := marshalNoEscape(lc)
	if err != nil {
		return fmt.Errorf("write _last_checkpoint: %w", err)
	}
	if err := st.Put(ctx, LastCheckpointKey, data); err != nil {
		return fmt.Errorf("write _last_checkpoint: %w", err)
	}
	return nil
}

// checkpointParts returns the number of files the hint names (1 unless
// Parts says otherwise).
func (lc *LastCheckpoint) checkpointParts() int {
	if lc.Parts != nil && *lc.Parts > 0 {
		return *lc.Parts
	}
	return 1
}
