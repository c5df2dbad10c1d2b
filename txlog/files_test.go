package txlog

import "testing"

func TestLogFileKeys(t *testing.T) {
	for got, want := range map[string]string{
		CommitKey(3):                    "_delta_log/00000000000000000003.json",
		CheckpointKey(10):               "_delta_log/00000000000000000010.checkpoint.parquet",
		MultiPartCheckpointKey(7, 2, 5): "_delta_log/00000000000000000007.checkpoint.0000000002.0000000005.parquet",
		V2CheckpointKey(2, "6374b053-df23-479b-b2cf-c9c550132b49", "json"): "_delta_log/00000000000000000002.checkpoint.6374b053-df23-479b-b2cf-c9c550132b49.json",
		CRCKey(1):           "_delta_log/00000000000000000001.crc",
		CompactedKey(6, 10): "_delta_log/00000000000000000006.00000000000000000010.compacted.json",
		LastCheckpointKey:   "_delta_log/_last_checkpoint",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

func TestParseLogFile(t *testing.T) {
	ok := []struct {
		key         string
		kind        LogFileKind
		v, end      int64
		part, parts int
		uuid, ext   string
	}{
		{"_delta_log/00000000000000000000.json", KindCommit, 0, 0, 1, 1, "", ""},
		{"_delta_log/09223372036854775807.json", KindCommit, 1<<63 - 1, 1<<63 - 1, 1, 1, "", ""},
		{"_delta_log/00000000000000000010.checkpoint.parquet", KindCheckpoint, 10, 10, 1, 1, "", ""},
		{"_delta_log/00000000000000000010.checkpoint.0000000003.0000000005.parquet", KindMultiPartCheckpoint, 10, 10, 3, 5, "", ""},
		{"_delta_log/00000000000000000002.checkpoint.6374b053-df23-479b-b2cf-c9c550132b49.json", KindV2Checkpoint, 2, 2, 1, 1, "6374b053-df23-479b-b2cf-c9c550132b49", "json"},
		{"_delta_log/00000000000000000002.checkpoint.6374B053-DF23-479b-b2cf-c9c550132b49.parquet", KindV2Checkpoint, 2, 2, 1, 1, "6374B053-DF23-479b-b2cf-c9c550132b49", "parquet"},
		{"_delta_log/00000000000000000006.00000000000000000010.compacted.json", KindCompacted, 6, 10, 1, 1, "", ""},
		{"_delta_log/00000000000000000004.crc", KindCRC, 4, 4, 1, 1, "", ""},
	}
	for _, tc := range ok {
		f, good := ParseLogFile(tc.key)
		if !good || f.Key != tc.key || f.Kind != tc.kind || f.Version != tc.v || f.EndVersion != tc.end ||
			f.Part != tc.part || f.Parts != tc.parts || f.UUID != tc.uuid || f.Ext != tc.ext {
			t.Errorf("ParseLogFile(%q) = %+v, %v", tc.key, f, good)
		}
	}
	for _, key := range []string{
		"00000000000000000000.json", // no _delta_log/ prefix
		"_delta_log/_last_checkpoint",
		"_delta_log/.tmp/00000000000000000005.json",
		"_delta_log/_staged_commits/00000000000000000005.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json",
		"_delta_log/_sidecars/00000000000000000006.checkpoint.0000000001.0000000002.055d2b7c-3a5c-4cf3-a4d2-ba6e20cbd9bc.parquet",
		"_delta_log/_autostats/00000000000000000007.0000000000.stats.json",
		"_delta_log/.00000000000000000003.json.abc.tmp",
		"_delta_log/00000000000000000003.json.tmp",
		"_delta_log/00000000000000000003.json.crc",
		"_delta_log/0000000000000000003.json",   // 19 digits
		"_delta_log/000000000000000000003.json", // 21 digits
		"_delta_log/99999999999999999999.json",  // overflows int64
		"_delta_log/0000000000000000000a.json",
		"_delta_log/00000000000000000010.checkpoint.0000000006.0000000005.parquet", // part > parts
		"_delta_log/00000000000000000010.checkpoint.0000000000.0000000005.parquet", // part 0
		"_delta_log/00000000000000000010.checkpoint.000000001.0000000005.parquet",
		"_delta_log/00000000000000000010.checkpoint.not-a-uuid.json",
		"_delta_log/00000000000000000010.checkpoint.6374b053-df23-479b-b2cf-c9c550132b49.avro",
		"_delta_log/00000000000000000010.checkpoint.json",
		"_delta_log/00000000000000000010.00000000000000000006.compacted.json", // end < start
		"_delta_log/00000000000000000006.0000000000000000010.compacted.json",
		"_delta_log/.s3-optimization-0",
		"_delta_log/",
		"part-00000.parquet",
	} {
		if f, good := ParseLogFile(key); good {
			t.Errorf("ParseLogFile(%q) = %+v, want not a log file", key, f)
		}
	}
}
