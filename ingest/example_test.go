package ingest_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kappa-lake/kappa/ingest"
	"github.com/kappa-lake/kappa/txlog"
)

// Ingest a topic of JSON events into a table partitioned by day, creating it
// on first run, until SIGTERM (then the daemon flushes and commits).
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "device", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: false},
		{Name: "ts", Type: &txlog.PrimitiveType{Name: txlog.TypeTimestamp}, Nullable: true},
		{Name: "temperature", Type: &txlog.PrimitiveType{Name: txlog.TypeDouble}, Nullable: true},
	}}
	err := ingest.Run(ctx, ingest.Options{
		TableURL:      "s3://lake/events?region=eu-west-1",
		Brokers:       []string{"kafka-1:9092", "kafka-2:9092"},
		Topics:        []string{"events"},
		AppID:         "events-ingest",
		Create:        true,
		Schema:        schema,
		Derived:       []ingest.DerivedColumn{{Name: "day", Source: "ts", Func: ingest.DeriveDate}},
		PartitionBy:   []string{"day"},
		Metadata:      ingest.MetadataColumns{Offset: "kafka_offset", Partition: "kafka_partition"},
		FlushInterval: 5 * time.Second,
		MetricsAddr:   ingest.DefaultMetricsAddr,
		Logger:        slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
	if err != nil {
		slog.Error("ingest", "err", err)
	}
}
