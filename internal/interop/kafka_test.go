//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
)

// startKafka runs a single-node KRaft Apache Kafka broker on 127.0.0.1
// (jars from scripts/kafka.sh) and returns its bootstrap address. The broker
// stops when the test ends.
func startKafka(t *testing.T) string {
	t.Helper()
	return startKafkaWith(t, kafkaConfig{}).Bootstrap
}

// kafkaListener is an extra broker listener on 127.0.0.1.
type kafkaListener struct {
	Name     string // listener name, e.g. SASLSSL (upper case)
	Protocol string // security protocol: SASL_SSL, SASL_PLAINTEXT, SSL
}

// kafkaConfig extends the broker startKafka runs.
type kafkaConfig struct {
	Listeners  []kafkaListener // besides PLAINTEXT and CONTROLLER
	Props      string          // extra server.properties lines
	FormatArgs []string        // extra kafka-storage format arguments (e.g. --add-scram)
}

// kafkaBroker is a running broker: Bootstrap is its PLAINTEXT listener,
// Addr maps every extra listener's name to its address.
type kafkaBroker struct {
	Bootstrap string
	Addr      map[string]string
}

// startKafkaWith is startKafka with extra listeners and settings.
func startKafkaWith(t *testing.T, kc kafkaConfig) *kafkaBroker {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(testutil.RepoRoot(), "scripts", "kafka.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/kafka.sh: %v: %s", err, tail(stderr.String(), 20))
	}
	libs := strings.TrimSpace(string(out))
	cp := filepath.Join(libs, "*")

	dir := t.TempDir()
	port, cport := freePort(t), freePort(t)
	b := &kafkaBroker{Bootstrap: fmt.Sprintf("127.0.0.1:%d", port), Addr: map[string]string{}}
	var listeners, advertised, protoMap strings.Builder
	for _, l := range kc.Listeners {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		b.Addr[l.Name] = addr
		fmt.Fprintf(&listeners, ",%s://%s", l.Name, addr)
		fmt.Fprintf(&advertised, ",%s://%s", l.Name, addr)
		fmt.Fprintf(&protoMap, ",%s:%s", l.Name, l.Protocol)
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d%[4]s
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d%[5]s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT%[6]s
log.dirs=%[3]s
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
log.retention.check.interval.ms=3600000
`, port, cport, filepath.Join(dir, "data"), listeners.String(), advertised.String(), protoMap.String()) + kc.Props
	propsFile := filepath.Join(dir, "server.properties")
	log4j := filepath.Join(dir, "log4j.properties")
	mustWrite(t, propsFile, props)
	mustWrite(t, log4j, "log4j.rootLogger=INFO, stdout\n"+
		"log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"+
		"log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"+
		"log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"+
		"log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=WARN\n")
	jvm := []string{
		"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.net.preferIPv4Stack=true", "-Dlog4j.configuration=file:" + log4j, "-cp", cp,
	}

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	formatArgs := append(append(jvm, "kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsFile), kc.FormatArgs...)
	format := exec.CommandContext(ctx, "java", formatArgs...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("kafka storage format: %v: %s", err, tail(string(out), 20))
	}

	logPath := filepath.Join(dir, "kafka.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// the broker outlives t.Context (stopped gracefully in Cleanup)
	broker := exec.CommandContext(context.WithoutCancel(t.Context()), "java", append(jvm, "kafka.Kafka", propsFile)...)
	broker.Stdout, broker.Stderr = logf, logf
	if err := broker.Start(); err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- broker.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = broker.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			_ = err // stopped by us: the exit status says nothing
		case <-time.After(20 * time.Second):
			_ = broker.Process.Kill()
			waitExit(exited)
		}
	})
	err = waitFor(t.Context(), 90*time.Second, func() (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("kafka exited: %w", err)
		default:
		}
		lb, _ := os.ReadFile(logPath)
		return bytes.Contains(lb, []byte("Kafka Server started")), nil
	})
	if err != nil {
		lb, _ := os.ReadFile(logPath)
		t.Fatalf("kafka did not start: %v\n%s", err, tail(string(lb), 30))
	}
	return b
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 100 ms until it holds, fails, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %s", timeout)
		case <-tick.C:
		}
	}
}

// producer runs scripts/interop/kafka_produce.py in the background.
type producer struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	errb   bytes.Buffer
	done   chan error
	result struct {
		Count        int            `json:"count"`
		PerPartition map[string]int `json:"per_partition"`
	}
}

func startProducer(t *testing.T, py, bootstrap, topic string, partitions, count, chunk, pauseMs int) *producer {
	t.Helper()
	// create the topic first: a consumer group joined before the topic
	// exists gets no partitions
	create := exec.CommandContext(t.Context(), py, script("kafka_produce.py"), "--bootstrap", bootstrap,
		"--topic", topic, "--partitions", fmt.Sprint(partitions), "--count", "0")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("create topic %s: %v: %s", topic, err, tail(string(out), 20))
	}
	p := &producer{done: make(chan error, 1)}
	p.cmd = exec.CommandContext(t.Context(), py, script("kafka_produce.py"), "--bootstrap", bootstrap,
		"--topic", topic, "--partitions", fmt.Sprint(partitions), "--count", fmt.Sprint(count),
		"--chunk", fmt.Sprint(chunk), "--pause-ms", fmt.Sprint(pauseMs))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// running reports whether the producer is still producing.
func (p *producer) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

func (p *producer) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("producer: %v: %s", err, tail(p.errb.String(), 20))
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("producer did not finish within 5 minutes")
	}
	if err := json.Unmarshal(bytes.TrimSpace(p.out.Bytes()), &p.result); err != nil {
		t.Fatalf("producer output %q: %v", p.out.String(), err)
	}
}

// daemon is one `kappa ingest` process.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

func startIngest(t *testing.T, name, tableURL, bootstrap, topic, group string, extra ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"ingest", tableURL, "--brokers", bootstrap, "--topic", topic,
		"--group", group, "--app-id", group, "--create", "--schema", "id long, payload string",
		"--partition-column", "kp", "--offset-column", "ko",
		"--flush-rows", "700", "--flush-interval", "300ms", "--log-format", "text",
		"--progress-interval", "2s",
	}, extra...)
	d := &daemon{name: name, cmd: exec.CommandContext(context.WithoutCancel(t.Context()), kappaBin, args...), done: make(chan error, 1), log: logPath}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
	})
	return d
}

func (d *daemon) kill(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	waitExit(d.done) // "signal: killed" is expected
}

// waitExit waits for a process we killed; its exit status ("signal:
// killed") carries no information, so it is dropped.
func waitExit(done <-chan error) {
	err := <-done
	_ = err
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			b, _ := os.ReadFile(d.log)
			t.Errorf("%s exited with %v after SIGTERM: %s", d.name, err, tail(string(b), 20))
		}
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		waitExit(d.done)
		t.Errorf("%s did not stop within 60s of SIGTERM", d.name)
	}
}

// gotPartitions reports whether the daemon was assigned partitions in some
// consumer group generation.
func (d *daemon) gotPartitions() bool {
	b, _ := os.ReadFile(d.log)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "generation started") && !strings.Contains(l, "partitions=[]") {
			return true
		}
	}
	return false
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	return tail(string(b), 25)
}

// tableVersion is the latest version of the table, -1 while it is missing.
func tableVersion(ctx context.Context, url string) int64 {
	tbl, err := table.Open(ctx, url)
	if err != nil {
		return -1
	}
	defer tbl.Close()
	s, err := tbl.Snapshot(ctx)
	if err != nil {
		return -1
	}
	return s.Version()
}

// latestSnapshot opens the table at url and loads its latest snapshot,
// failing t when either fails. The table (whose store the snapshot reads
// through) is closed when t ends.
func latestSnapshot(ctx context.Context, t *testing.T, url string) *table.Snapshot {
	t.Helper()
	tbl, err := table.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// killMidStream runs kills daemons one after the other (start(k) starts
// the k-th), SIGKILLing each once the table has advanced two versions
// since it started. It returns the kills that happened while the producer
// was still producing; after, when set, sees each killed daemon.
func killMidStream(ctx context.Context, t *testing.T, url string, kills int, prod *producer, start func(k int) *daemon, after func(*daemon)) (midStream int) {
	t.Helper()
	for k := range kills {
		d := start(k)
		base := tableVersion(ctx, url)
		err := waitFor(ctx, 90*time.Second, func() (bool, error) {
			select {
			case err := <-d.done:
				d.done <- err
				return false, fmt.Errorf("ingest exited early: %w", err)
			default:
			}
			return tableVersion(ctx, url) >= base+2, nil
		})
		if err != nil {
			t.Fatalf("run %d: %v\n%s", k, err, d.logTail())
		}
		if prod.running() {
			midStream++
		}
		d.kill(t)
		if after != nil {
			after(d)
		}
	}
	if midStream == 0 {
		t.Errorf("no SIGKILL happened while the producer was still producing")
	}
	return midStream
}

// waitUntilEnd waits for a daemon started with --until-end to exit 0
// within limit (SIGKILLing it and failing t otherwise) and returns how
// long it took since began.
func waitUntilEnd(t *testing.T, d *daemon, limit time.Duration, began time.Time) time.Duration {
	t.Helper()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("ingest %s --until-end: %v\n%s", d.name, err, d.logTail())
		}
	case <-time.After(limit):
		d.kill(t)
		t.Fatalf("ingest %s --until-end did not finish within %s\n%s", d.name, limit, d.logTail())
	}
	return time.Since(began)
}

// ingestedRow is a row of an ingested table: the producer's id and the
// Kafka partition and offset the daemon recorded (columns id, kp, ko).
type ingestedRow struct{ id, partition, offset int64 }

// ingestedRows reads the id, kp and ko columns of every row of snap.
func ingestedRows(ctx context.Context, t *testing.T, snap *table.Snapshot) []ingestedRow {
	t.Helper()
	var out []ingestedRow
	for r, err := range reader.NewScan(snap, reader.WithColumns("id", "kp", "ko")).Rows(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.Get("id")
		kp, _ := r.Get("kp")
		ko, _ := r.Get("ko")
		idv, _ := id.(int64)
		kpv, _ := kp.(int32)
		kov, _ := ko.(int64)
		out = append(out, ingestedRow{idv, int64(kpv), kov})
	}
	return out
}

// checkExactlyOnce reads the table and checks that every (partition,
// offset) produced is there exactly once with the right id, nothing else,
// and that the txn offsets match. It returns the rows checked.
func checkExactlyOnce(ctx context.Context, t *testing.T, url, app, topic string, p *producer, partitions int) int {
	t.Helper()
	snap := latestSnapshot(ctx, t, url)
	type po struct{ p, o int64 }
	seen := map[po]int{}
	ids := map[int64]int{}
	rows := 0
	for _, r := range ingestedRows(ctx, t, snap) {
		rows++
		seen[po{r.partition, r.offset}]++
		ids[r.id]++
	}
	dups, lost := 0, 0
	for k, n := range seen {
		if n > 1 {
			dups += n - 1
			if dups <= 3 {
				t.Errorf("partition %d offset %d is in the table %d times", k.p, k.o, n)
			}
		}
	}
	for i := range int64(p.result.Count) {
		if ids[i] == 0 {
			lost++
			if lost <= 3 {
				t.Errorf("message id %d is missing", i)
			}
		}
	}
	for part := range partitions {
		n := int64(p.result.PerPartition[fmt.Sprint(part)])
		for o := range n {
			if seen[po{int64(part), o}] == 0 && lost == 0 {
				t.Errorf("partition %d offset %d missing", part, o)
			}
		}
		app := fmt.Sprintf("%s-%s-%d", app, topic, part)
		if v, ok := snap.Txn(app); !ok || v != n-1 {
			t.Errorf("txn %s = %d (present %v), want %d", app, v, ok, n-1)
		}
	}
	if rows != p.result.Count || dups != 0 || lost != 0 {
		t.Errorf("table has %d rows for %d messages: %d duplicates, %d lost", rows, p.result.Count, dups, lost)
	}
	return rows
}

// TestKafkaIngest: a real Kafka broker, an independent producer, and
// `kappa ingest` SIGKILLed mid-stream several times, then two daemons in one
// group with one stopped mid-stream. Every message must land exactly once.
func TestKafkaIngest(t *testing.T) {
	ctx := t.Context()
	py := python(t)
	if out, err := exec.CommandContext(ctx, kappaBin, "ingest", "--help").CombinedOutput(); err != nil && !bytes.Contains(out, []byte("usage")) {
		record("kafka", "kappa ingest", "-", "SKIP: ingest not available")
		t.Skipf("kappa ingest not available: %v: %s", err, out)
	}
	started := time.Now()
	bootstrap := startKafka(t)
	t.Logf("kafka broker on %s ready in %s", bootstrap, time.Since(started).Round(time.Millisecond))

	t.Run("sigkill-restart", func(t *testing.T) {
		const n, parts, kills = 30000, 3, 4
		url := filepath.Join(t.TempDir(), "events")
		prod := startProducer(t, py, bootstrap, "events", parts, n, 500, 700)
		midStream := killMidStream(ctx, t, url, kills, prod, func(k int) *daemon {
			return startIngest(t, fmt.Sprintf("ingest-%d", k), url, bootstrap, "events", "interop-kill")
		}, nil)
		prod.wait(t)
		final := startIngest(t, "ingest-final", url, bootstrap, "events", "interop-kill", "--until-end")
		waitUntilEnd(t, final, 3*time.Minute, time.Now())
		rows := checkExactlyOnce(ctx, t, url, "interop-kill", "events", prod, parts)
		record("kafka", "Apache Kafka 3.9.1 -> kappa ingest",
			fmt.Sprintf("%d msgs, %d SIGKILLs (%d mid-stream), %d table versions", rows, kills, midStream, tableVersion(ctx, url)+1),
			passFail(!t.Failed()))
	})

	t.Run("two-daemons-one-stopped", func(t *testing.T) {
		const n, parts = 20000, 4
		url := filepath.Join(t.TempDir(), "events2")
		prod := startProducer(t, py, bootstrap, "events2", parts, n, 400, 300)
		a := startIngest(t, "ingest-a", url, bootstrap, "events2", "interop-pair")
		b := startIngest(t, "ingest-b", url, bootstrap, "events2", "interop-pair")
		// both daemons own partitions and commits are landing
		err := waitFor(ctx, 90*time.Second, func() (bool, error) {
			return a.gotPartitions() && b.gotPartitions() && tableVersion(ctx, url) >= 4, nil
		})
		if err != nil {
			t.Fatalf("no progress: %v\n%s\n%s", err, a.logTail(), b.logTail())
		}
		if !prod.running() {
			t.Errorf("daemon a was stopped only after the producer finished")
		}
		a.stop(t)
		prod.wait(t)
		want := map[int]int64{}
		for part := range parts {
			want[part] = int64(prod.result.PerPartition[fmt.Sprint(part)]) - 1
		}
		err = waitFor(ctx, 3*time.Minute, func() (bool, error) {
			select {
			case err := <-b.done:
				b.done <- err
				return false, fmt.Errorf("daemon b exited: %w", err)
			default:
			}
			tbl, err := table.Open(ctx, url)
			if err != nil {
				return false, nil
			}
			defer tbl.Close()
			s, err := tbl.Snapshot(ctx)
			if err != nil {
				return false, nil
			}
			for part, w := range want {
				if v, ok := s.Txn(fmt.Sprintf("interop-pair-events2-%d", part)); !ok || v < w {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("daemon b did not catch up: %v\n%s", err, b.logTail())
		}
		b.stop(t)
		rows := checkExactlyOnce(ctx, t, url, "interop-pair", "events2", prod, parts)
		record("kafka", "Apache Kafka 3.9.1 -> 2 kappa ingest daemons",
			fmt.Sprintf("%d msgs, 1 of 2 daemons stopped mid-stream", rows), passFail(!t.Failed()))
	})

	t.Run("s3-table", func(t *testing.T) {
		const n, parts = 8000, 2
		url := testutil.S3URL(testutil.S3Addr(t, testutil.StartS3(t)), "ingest/events3")
		prod := startProducer(t, py, bootstrap, "events3", parts, n, 500, 400)
		d := startIngest(t, "ingest-s3", url, bootstrap, "events3", "interop-s3")
		err := waitFor(ctx, 90*time.Second, func() (bool, error) { return tableVersion(ctx, url) >= 3, nil })
		if err != nil {
			t.Fatalf("no progress on s3: %v\n%s", err, d.logTail())
		}
		midStream := prod.running()
		d.kill(t)
		prod.wait(t)
		final := startIngest(t, "ingest-s3-final", url, bootstrap, "events3", "interop-s3", "--until-end")
		waitUntilEnd(t, final, 3*time.Minute, time.Now())
		rows := checkExactlyOnce(ctx, t, url, "interop-s3", "events3", prod, parts)
		record("kafka", "Apache Kafka 3.9.1 -> kappa ingest -> S3 (versitygw)",
			fmt.Sprintf("%d msgs, 1 SIGKILL (mid-stream %v), %d table versions", rows, midStream, tableVersion(ctx, url)+1),
			passFail(!t.Failed()))
	})
}
