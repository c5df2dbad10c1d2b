package txlog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// deepSchema nests depth struct levels (built in linear time).
func deepSchema(depth int) string {
	open := `{"type":"struct","fields":[{"name":"n","type":`
	closeS := `,"nullable":true,"metadata":{}}]}`
	leaf := `{"type":"struct","fields":[{"name":"leaf","type":"long","nullable":true,"metadata":{}}]}`
	return strings.Repeat(open, depth) + leaf + strings.Repeat(closeS, depth)
}

// TestParseSchemaDepthBound is the regression test of a hostile-table
// finding: ParseSchema re-decodes each level's raw JSON, so a 2000-deep
// schemaString (160 KB) took seconds; it is now refused quickly.
func TestParseSchemaDepthBound(t *testing.T) {
	if _, err := ParseSchema(deepSchema(maxSchemaDepth - 1)); err != nil {
		t.Fatalf("depth %d: %v", maxSchemaDepth-1, err)
	}
	for _, depth := range []int{maxSchemaDepth + 1, 2000, 9000, 50000} {
		start := time.Now()
		_, err := ParseSchema(deepSchema(depth))
		if !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("depth %d: %v, want ErrInvalidSchema", depth, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("depth %d: refused after %s", depth, d)
		}
	}
	// Arrays and maps count as levels too.
	arr := strings.Repeat(`{"type":"array","containsNull":true,"elementType":`, 3000) + `"long"` + strings.Repeat(`}`, 3000)
	if _, err := ParseSchema(`{"type":"struct","fields":[{"name":"a","type":` + arr + `,"nullable":true,"metadata":{}}]}`); !errors.Is(err, ErrInvalidSchema) {
		t.Errorf("deep arrays: %v", err)
	}
}
