package txlog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LogDir is the key prefix of the transaction log under a table root.
const LogDir = "_delta_log/"

// LastCheckpointKey is the key of the _last_checkpoint hint file.
const LastCheckpointKey = LogDir + "_last_checkpoint"

// SidecarDir is the key prefix of V2 checkpoint sidecar files.
const SidecarDir = LogDir + "_sidecars/"

// LogFileKind classifies a file of the transaction log.
type LogFileKind int

// Kinds of log files. KindUnknown is never returned by ParseLogFile.
const (
	KindUnknown LogFileKind = iota
	// KindCommit is <v>.json.
	KindCommit
	// KindCheckpoint is a classic single-file <v>.checkpoint.parquet.
	KindCheckpoint
	// KindMultiPartCheckpoint is <v>.checkpoint.<part>.<parts>.parquet.
	KindMultiPartCheckpoint
	// KindV2Checkpoint is <v>.checkpoint.<uuid>.json or .parquet.
	KindV2Checkpoint
	// KindCompacted is a log compaction file <x>.<y>.compacted.json.
	KindCompacted
	// KindCRC is a version checksum file <v>.crc.
	KindCRC
)

func (k LogFileKind) String() string {
	switch k {
	case KindCommit:
		return "commit"
	case KindCheckpoint:
		return "checkpoint"
	case KindMultiPartCheckpoint:
		return "multi-part checkpoint"
	case KindV2Checkpoint:
		return "v2 checkpoint"
	case KindCompacted:
		return "compacted"
	case KindCRC:
		return "crc"
	}
	return "unknown"
}

// IsCheckpoint reports whether the kind is one of the checkpoint kinds.
func (k LogFileKind) IsCheckpoint() bool {
	return k == KindCheckpoint || k == KindMultiPartCheckpoint || k == KindV2Checkpoint
}

// LogFile is a file of the transaction log, as named by ParseLogFile and
// described by the store listing (Size, ModTime).
type LogFile struct {
	Key     string // store key, e.g. "_delta_log/00000000000000000003.json"
	Version int64  // commit or checkpoint version; first version of a compacted file
	// EndVersion is the last version covered by a compacted file; equal to
	// Version for every other kind.
	EndVersion int64
	Kind       LogFileKind
	Part       int    // multi-part checkpoint: 1-based part number; else 1
	Parts      int    // multi-part checkpoint: number of parts; else 1
	UUID       string // V2 checkpoint: the uuid in the name
	Ext        string // V2 checkpoint: "json" or "parquet"
	Size       int64
	ModTime    time.Time
}

// CommitKey returns the key of commit v: "_delta_log/%020d.json".
func CommitKey(v int64) string { return fmt.Sprintf("%s%020d.json", LogDir, v) }

// CheckpointKey returns the key of the classic single-file checkpoint of v.
func CheckpointKey(v int64) string { return fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, v) }

// MultiPartCheckpointKey returns the key of part (1-based) of parts of the
// multi-part checkpoint of v.
func MultiPartCheckpointKey(v int64, part, parts int) string {
	return fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", LogDir, v, part, parts)
}

// V2CheckpointKey returns the key of a V2 checkpoint of v; ext is "json" or
// "parquet".
func V2CheckpointKey(v int64, uuid, ext string) string {
	return fmt.Sprintf("%s%020d.checkpoint.%s.%s", LogDir, v, uuid, ext)
}

// CRCKey returns the key of the version checksum file of v.
func CRCKey(v int64) string { return fmt.Sprintf("%s%020d.crc", LogDir, v) }

// CompactedKey returns the key of the log compaction file covering from..to.
func CompactedKey(from, to int64) string {
	return fmt.Sprintf("%s%020d.%020d.compacted.json", LogDir, from, to)
}

// ParseLogFile classifies a store key. It returns false for every key that is
// not a log file this package knows: keys outside _delta_log/, files in
// subdirectories (_sidecars/, _staged_commits/, .tmp/), temp files,
// _last_checkpoint, and names that do not follow the protocol exactly
// (20-digit versions, 10-digit part numbers with 1 <= part <= parts).
// Size and ModTime are left zero.
func ParseLogFile(key string) (LogFile, bool) {
	name, ok := strings.CutPrefix(key, LogDir)
	if !ok || strings.Contains(name, "/") {
		return LogFile{}, false
	}
	v, ok := parseDigits(name, 20)
	if !ok {
		return LogFile{}, false
	}
	rest := name[20:]
	f := LogFile{Key: key, Version: v, EndVersion: v, Part: 1, Parts: 1}
	switch {
	case rest == ".json":
		f.Kind = KindCommit
	case rest == ".crc":
		f.Kind = KindCRC
	case rest == ".checkpoint.parquet":
		f.Kind = KindCheckpoint
	case strings.HasPrefix(rest, ".checkpoint."):
		return parseCheckpointName(f, rest[len(".checkpoint."):])
	case strings.HasSuffix(rest, ".compacted.json") && len(rest) == 1+20+len(".compacted.json") && rest[0] == '.':
		end, ok := parseDigits(rest[1:], 20)
		if !ok || end < v {
			return LogFile{}, false
		}
		f.Kind, f.EndVersion = KindCompacted, end
	default:
		return LogFile{}, false
	}
	return f, true
}

// parseCheckpointName parses what follows "<v>.checkpoint.": either
// "<part10>.<parts10>.parquet" or "<uuid>.json|parquet".
func parseCheckpointName(f LogFile, rest string) (LogFile, bool) {
	if len(rest) == 10+1+10+len(".parquet") && rest[10] == '.' && strings.HasSuffix(rest, ".parquet") {
		part, ok1 := parseDigits(rest, 10)
		parts, ok2 := parseDigits(rest[11:], 10)
		if !ok1 || !ok2 || part < 1 || part > parts || parts > 1<<31-1 {
			return LogFile{}, false
		}
		f.Kind, f.Part, f.Parts = KindMultiPartCheckpoint, int(part), int(parts)
		return f, true
	}
	id, ext, ok := strings.Cut(rest, ".")
	if !ok || (ext != "json" && ext != "parquet") || !isUUID(id) {
		return LogFile{}, false
	}
	f.Kind, f.UUID, f.Ext = KindV2Checkpoint, id, ext
	return f, true
}

// parseDigits parses exactly n leading decimal digits of s as a non-negative
// int64.
func parseDigits(s string, n int) (int64, bool) {
	if len(s) < n {
		return 0, false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s[:n], 10, 64)
	return v, err == nil
}

// isUUID reports whether s has the textual UUID form 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
