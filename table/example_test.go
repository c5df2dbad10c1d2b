package table_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func Example() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
		{Name: "device", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true},
	}}
	// mem:// tables live in this process only; a unique name per run.
	url := fmt.Sprintf("mem://readings-%d", time.Now().UnixNano())
	tbl, err := table.Create(ctx, url, schema, table.WithPartitionColumns("device"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tbl.Close()

	// Commit a data file (written elsewhere, e.g. by table.Append) together
	// with the application's progress marker, exactly once.
	tx, err := tbl.NewTransaction(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	if v, ok := tx.ReadTxn("ingest-0"); !ok || v < 1 {
		dev := "sensor-1"
		tx.AddFiles(&txlog.Add{
			Path:            "device=sensor-1/part-0001.parquet",
			PartitionValues: map[string]*string{"device": &dev},
			Size:            1024, ModificationTime: time.Now().UnixMilli(), DataChange: true,
			Stats: `{"numRecords":10}`,
		})
		tx.SetTxn("ingest-0", 1)
		version, err := tx.Commit(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("committed version", version)
	}

	// Time travel: the snapshot as of now is the latest one.
	snap, err := tbl.Snapshot(ctx, table.AsOf(time.Now().Add(time.Hour)))
	if err != nil {
		fmt.Println(err)
		return
	}
	appVersion, _ := snap.Txn("ingest-0")
	fmt.Println("version", snap.Version(), "files", snap.NumFiles(), "ingest-0 at", appVersion)
	for _, f := range snap.Files() {
		fmt.Println(f.Path, *f.PartitionValues["device"])
	}
	// Output:
	// committed version 1
	// version 1 files 1 ingest-0 at 1
	// device=sensor-1/part-0001.parquet sensor-1
}
