package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/internal/store"
)

// BenchmarkDecodeWrite measures the daemon's per-message work in one
// process without Kafka: decoding a ~200 B JSON message into a slot row and
// writing it to a Parquet data-file writer (encoding in the background).
func BenchmarkDecodeWrite(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "mem://decode-write-bench")
	if err != nil {
		b.Fatal(err)
	}
	o := &Options{}
	d := newDecoder(benchSchema(), o)
	msgs := make([][]byte, 1000)
	now := time.Now().UnixMilli()
	for i := range msgs {
		msgs[i] = benchValue(i, now)
	}
	w, err := pq.NewFileWriter(st, pq.Options{Schema: benchSchema(), IgnoreUnknownFields: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	var order keyOrder
	for b.Loop() {
		dec := d.decodeFast(&order, "t", 0, int64(i), nil, msgs[i%len(msgs)], time.Time{})
		if dec.err != nil {
			b.Fatal(dec.err)
		}
		if err := w.WriteSlots(ctx, dec.names, dec.vals); err != nil {
			b.Fatal(err)
		}
		dec.recycle()
		i++
	}
	if _, err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
