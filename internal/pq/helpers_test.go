package pq

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/kappa-lake/kappa/txlog"
	"github.com/parquet-go/parquet-go"
)

// memPut is an in-memory Putter.
type memPut struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemPut() *memPut { return &memPut{m: map[string][]byte{}} }

func (m *memPut) Put(_ context.Context, k string, d []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[k] = bytes.Clone(d)
	return nil
}

func (m *memPut) Delete(_ context.Context, k string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, k)
	return nil
}

func (m *memPut) keys() []string {
	var ks []string
	for k := range m.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type txlogStruct = txlog.StructType

func parseSchema(s string) (*txlog.StructType, error) { return txlog.ParseSchema(s) }

func openFile(t *testing.T, data []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
