package readme

import (
	"context"
	"fmt"
	"time"

	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// README:begin

// siteAverages returns the average temperature per site in the table as it
// was at time asOf, and the table version that was.
func siteAverages(ctx context.Context, url string, asOf time.Time) (map[string]float64, int64, error) {
	tbl, err := table.Open(ctx, url) // file path, file://, s3://, gs://, azblob:// or mem://
	if err != nil {
		return nil, 0, err
	}
	defer tbl.Close()

	// The latest version committed at or before asOf.
	snap, err := tbl.Snapshot(ctx, table.AsOf(asOf))
	if err != nil {
		return nil, 0, err
	}

	// Read two columns; files whose statistics show only null temps are skipped.
	scan := reader.NewScan(snap,
		reader.WithColumns("site", "temp"),
		reader.WithPredicate(reader.IsNotNull(reader.Col("temp"))))
	sums, counts := map[string]float64{}, map[string]int{}
	for row, err := range scan.Rows(ctx) {
		if err != nil {
			return nil, 0, err
		}
		site, _ := row.Get("site")
		temp, _ := row.Get("temp")
		sums[site.(string)] += temp.(float64)
		counts[site.(string)]++
	}
	for site := range sums {
		sums[site] /= float64(counts[site])
	}
	return sums, snap.Version(), nil
}

// README:end

// Example builds a small table whose commits happened two days ago and one
// hour ago, then asks for the averages as of yesterday 00:00 UTC: only the
// first batch counts.
func Example() {
	ctx := context.Background()
	now := time.Now().UTC()
	yesterday := now.Truncate(24*time.Hour).AddDate(0, 0, -1) // yesterday 00:00 UTC

	clock := now.Add(-48 * time.Hour)
	schema, err := txlog.ParseDDL("site string, ts timestamp, temp double")
	if err != nil {
		panic(err)
	}
	tbl, err := table.Create(ctx, "mem://readme-example", schema, table.WithClock(func() time.Time { return clock }))
	if err != nil {
		panic(err)
	}
	defer tbl.Close()
	batch := func(temps ...float64) {
		rows := make([]map[string]any, len(temps))
		for i, t := range temps {
			rows[i] = map[string]any{"site": []string{"oslo", "turin"}[i%2], "ts": clock.Format(time.RFC3339), "temp": t}
		}
		if _, err := tbl.Append(ctx, rows); err != nil {
			panic(err)
		}
	}
	batch(10, 20, 12, 22) // committed two days ago
	clock = now.Add(-time.Hour)
	batch(100, 200) // committed an hour ago

	avg, version, err := siteAverages(ctx, "mem://readme-example", yesterday)
	if err != nil {
		panic(err)
	}
	fmt.Printf("version %d: oslo %.1f, turin %.1f\n", version, avg["oslo"], avg["turin"])
	// Output: version 1: oslo 11.0, turin 21.0
}
