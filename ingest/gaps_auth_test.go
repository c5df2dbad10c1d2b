package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// TestGapsAuth runs the daemon against an in-process broker requiring each
// SASL mechanism, TLS, both, and a client certificate, checking records
// land exactly once; then with a wrong password (or an untrusted server
// certificate, or no client certificate) Run must fail fast
// with ErrBrokerAuth instead of waiting for a group that never forms.
func TestGapsAuth(t *testing.T) {
	pki := testutil.NewLoopbackPKI(t)
	const user, pass = "kappa", "s3cret-pw"
	cases := []struct {
		name string
		mech string
		tls  bool
		mtls bool // the broker requires a client certificate
	}{
		{"PLAIN", SASLPlain, false, false},
		{"SCRAM-SHA-256", SASLScramSHA256, false, false},
		{"SCRAM-SHA-512", SASLScramSHA512, false, false},
		{"TLS", "", true, false},
		{"TLS+SCRAM-SHA-512", SASLScramSHA512, true, false},
		{"mTLS", "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kopts := []kfake.Opt{
				kfake.NumBrokers(1),
				kfake.SeedTopics(2, "secure"),
				kfake.GroupMinSessionTimeout(100 * time.Millisecond),
			}
			if tc.mech != "" {
				kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(tc.mech, user, pass))
			}
			switch {
			case tc.mtls:
				kopts = append(kopts, kfake.TLS(pki.MutualServer))
			case tc.tls:
				kopts = append(kopts, kfake.TLS(pki.Server))
			}
			c, err := kfake.NewCluster(kopts...)
			if err != nil {
				t.Fatalf("kfake: %v", err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()

			var clientTLS *tls.Config
			switch {
			case tc.mtls:
				clientTLS = pki.MutualClient
			case tc.tls:
				clientTLS = pki.Client
			}
			mech, err := saslMechanism(SASL{Mechanism: tc.mech, Username: user, Password: pass})
			if err != nil {
				t.Fatal(err)
			}
			w := newProducer(brokers, "secure")
			w.Transport = &kafka.Transport{TLS: clientTLS, SASL: mech}
			defer w.Close()
			produceJSON(t, w, 0, 300)

			dir := t.TempDir()
			url := filepath.Join(dir, "secure")
			o := testOptions(t, brokers, url, "secure")
			o.TLS = clientTLS
			if tc.mech != "" {
				o.SASL = SASL{Mechanism: tc.mech, Username: user, Password: pass}
			}
			o.UntilEnd = true
			o.FlushRows = 100
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := Run(ctx, o); err != nil {
				t.Fatalf("until-end run: %v", err)
			}
			checkExactlyOnce(t, url, 300, "test", "secure")

			// Bad credentials: a daemon (not until-end: it would otherwise
			// wait for its group forever) must stop with a clear error.
			bad := testOptions(t, brokers, filepath.Join(dir, "rejected"), "secure")
			bad.TLS = clientTLS
			switch {
			case tc.mech != "":
				bad.SASL = SASL{Mechanism: tc.mech, Username: user, Password: "wrong-" + pass}
			case tc.mtls:
				bad.TLS = pki.Client // no client certificate: the broker's alert comes after the handshake
			default:
				bad.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()} // trusts nothing
			}
			start := time.Now()
			rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer rcancel()
			err = Run(rctx, bad)
			took := time.Since(start)
			if !errors.Is(err, ErrBrokerAuth) {
				t.Fatalf("run with bad credentials: err = %v after %v, want ErrBrokerAuth", err, took)
			}
			if rctx.Err() != nil || took > 10*time.Second {
				t.Fatalf("bad credentials reported after %v", took)
			}
			if bad.Metrics.ready.Load() {
				t.Error("daemon reported ready with rejected credentials")
			}
			for _, p := range []string{"rejected", "rejected_dlq"} {
				if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a daemon rejected at start left %s behind (stat: %v)", p, err)
				}
			}
			t.Logf("rejected after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}

// recordLevels is a slog handler keeping the level of every record.
type recordLevels struct{ levels *[]slog.Level }

func (h recordLevels) Enabled(context.Context, slog.Level) bool { return true }
func (h recordLevels) Handle(_ context.Context, r slog.Record) error {
	*h.levels = append(*h.levels, r.Level)
	return nil
}
func (h recordLevels) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordLevels) WithGroup(string) slog.Handler      { return h }

// TestGapsAuthLogEscalation: kafka-go's consumer group reports a rejected
// login only as text; the daemon's adapter must raise it to error level
// (the group keeps retrying, so this is what an operator sees) and keep
// routine group errors at debug.
func TestGapsAuthLogEscalation(t *testing.T) {
	var levels []slog.Level
	l := slog.New(recordLevels{&levels})
	k := kafkaLogger{log: l.Debug, escalate: l.Error, where: "group"}
	k.Printf("Failed to connect to coordinator: %v", errors.New("could not successfully authenticate to 127.0.0.1:9092 with SASL: [58] SASL Authentication Failed"))
	k.Printf("Failed to connect to coordinator: %v", errors.New("failed to dial: tls: failed to verify certificate: x509: certificate signed by unknown authority"))
	k.Printf("Failed to join group %s: %v", "g", kafka.RebalanceInProgress)
	want := []slog.Level{slog.LevelError, slog.LevelError, slog.LevelDebug}
	if fmt.Sprint(levels) != fmt.Sprint(want) {
		t.Fatalf("levels %v, want %v", levels, want)
	}
}
