package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

func TestOptionsDefaultsAndValidate(t *testing.T) {
	o := (&Options{TableURL: "s3://b/events?region=x", Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}}).EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.FlushInterval != 10*time.Second || o.AppID != "kappa" || o.Group != "kappa" || o.Start != StartEarliest {
		t.Errorf("defaults: %+v", o)
	}
	if o.DLQTable != "s3://b/events_dlq?region=x" {
		t.Errorf("DLQ default %q", o.DLQTable)
	}
	bad := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no table", func(o *Options) { o.TableURL = "" }, "table URL"},
		{"no broker", func(o *Options) { o.Brokers = nil }, "broker"},
		{"broker port", func(o *Options) { o.Brokers = []string{"localhost"} }, "host:port"},
		{"no topic", func(o *Options) { o.Topics = nil }, "topic"},
		{"dup topic", func(o *Options) { o.Topics = []string{"a", "a"} }, "repeated"},
		{"start", func(o *Options) { o.Start = "middle" }, "earliest or latest"},
		{"both dlq", func(o *Options) { o.DLQTopic = "dead" }, "not both"},
		{"dlq is table", func(o *Options) { o.DLQTable = o.TableURL }, "differ"},
		{"create without schema", func(o *Options) { o.Create = true }, "schema"},
		{"sasl", func(o *Options) { o.SASL.Mechanism = "GSSAPI" }, "SASL"},
		{"sasl user", func(o *Options) { o.SASL.Mechanism = "SCRAM-SHA-512" }, "username"},
		{"meta twice", func(o *Options) { o.Metadata = MetadataColumns{Topic: "x", Offset: "x"} }, "twice"},
		{"partition col", func(o *Options) { o.Schema = testSchema(); o.PartitionBy = []string{"nope"} }, "neither in the schema"},
		{"negative", func(o *Options) { o.FlushRows = -1 }, "negative"},
	}
	for _, c := range bad {
		o2 := *o
		c.mod(&o2)
		err := o2.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.want)
		}
	}
	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if _, err := saslMechanism(SASL{Mechanism: m, Username: "u", Password: "p"}); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestParseDerivedColumn(t *testing.T) {
	d, err := ParseDerivedColumn("day=date(ts)")
	if err != nil || d != (DerivedColumn{Name: "day", Source: "ts", Func: DeriveDate}) {
		t.Fatalf("%+v %v", d, err)
	}
	for _, s := range []string{"day", "day=ts", "day=week(ts)", "=date(ts)", "d=date()"} {
		if _, err := ParseDerivedColumn(s); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestDecode(t *testing.T) {
	o := (&Options{
		Metadata: MetadataColumns{Topic: "k_topic", Partition: "k_part", Offset: "k_off", Timestamp: "k_ts", Key: "k_key"},
		Derived:  []DerivedColumn{{Name: "day", Source: "ts", Func: DeriveDate}, {Name: "hr", Source: "ts", Func: DeriveHour}},
	}).EnsureDefaults()
	schema := testSchema()
	schema.Fields = append(schema.Fields, &txlog.StructField{Name: "ts", Type: &txlog.PrimitiveType{Name: "timestamp"}, Nullable: true})
	schema.Fields = append(schema.Fields, metadataFields(o.Metadata, o.Derived)...)
	d := newDecoder(schema, o)
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	got := d.decode("t", 3, 42, []byte("key"), []byte(`{"id":"a","n":12345678901234567890,"ts":"2026-01-02T23:30:00Z","extra":1}`), ts)
	if got.err != nil {
		t.Fatal(got.err)
	}
	r := got.row
	if r["k_topic"] != "t" || r["k_part"] != json.Number("3") || r["k_off"] != json.Number("42") || string(r["k_key"].([]byte)) != "key" {
		t.Errorf("metadata columns: %v", r)
	}
	if r["day"] != "2026-01-02" || r["hr"] != json.Number("23") {
		t.Errorf("derived: %v %v", r["day"], r["hr"])
	}
	if r["n"] != json.Number("12345678901234567890") {
		t.Errorf("number not kept exact: %v", r["n"])
	}
	if _, ok := r["extra"]; ok {
		t.Error("unknown field kept without schema evolution")
	}
	// epoch millis for the derived column
	got = d.decode("t", 0, 0, nil, []byte(`{"id":"a","ts":86400000}`), time.Time{})
	if got.err != nil || got.row["day"] != "1970-01-02" || got.row["k_ts"] != nil || got.row["k_key"] != nil {
		t.Errorf("epoch ms: %v %v", got.row, got.err)
	}
	for _, bad := range []string{`nope`, `[1]`, `"s"`, `null`, `{"id":"a"} x`, ``, `{"id":"a","ts":true}`} {
		if got := d.decode("t", 0, 0, nil, []byte(bad), time.Time{}); got.err == nil {
			t.Errorf("%q decoded without error: %v", bad, got.row)
		}
	}
	// evolution reports new fields
	o.SchemaEvolution = true
	d = newDecoder(schema, o)
	got = d.decode("t", 0, 0, nil, []byte(`{"id":"a","extra":{"b":true,"a":1.5},"tags":["x"]}`), time.Time{})
	if len(got.newFields) != 2 || got.raw == nil {
		t.Fatalf("newFields %v", got.newFields)
	}
	if s := inferType(got.raw["extra"]).String(); s != "struct<a:double,b:boolean>" {
		t.Errorf("inferred %s", s)
	}
	if s := inferType(got.raw["tags"]).String(); s != "array<string>" {
		t.Errorf("inferred %s", s)
	}
	if s := inferType(json.Number("7")).String(); s != "long" {
		t.Errorf("inferred %s", s)
	}
}

func TestMetricsText(t *testing.T) {
	m := NewMetrics()
	m.RecordsConsumed.Add(5)
	m.ObserveCommit(30 * time.Millisecond)
	m.SetLag("t", 1, 7)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	code, body := get("/metrics")
	for _, want := range []string{
		"kappa_ingest_records_consumed_total 5",
		`kappa_ingest_commit_latency_seconds_bucket{le="0.05"} 1`,
		`kappa_ingest_commit_latency_seconds_bucket{le="0.025"} 0`,
		"kappa_ingest_commit_latency_seconds_count 1",
		`kappa_ingest_partition_lag{topic="t",partition="1"} 7`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before ready: %d", code)
	}
	m.SetReady(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
}
