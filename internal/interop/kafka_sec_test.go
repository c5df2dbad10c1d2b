//go:build interop

package interop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// propValue escapes a multi-line value for a Java properties file.
func propValue(b []byte) string {
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", `\n`)
}

const (
	secUser        = "kappa"
	scramSecret    = "kappa-scram-secret-512"
	scram256Secret = "kappa-scram-secret-256" // differs: a SHA-512 login must not pass as SHA-256
	plainSecret    = "kappa-plain-secret"
	secListenSSL   = "SASLSSL"   // SASL_SSL, SCRAM-SHA-512 and SCRAM-SHA-256
	secListenTXT   = "SASLPLAIN" // SASL_PLAINTEXT, PLAIN
	secListenMTLS  = "MTLS"      // SSL, client certificate required
)

// securePKI holds the files clients of startSecureKafka use.
type securePKI struct {
	CA        string // the test CA (PEM)
	Cert, Key string // a client certificate signed by the CA, and its key
	OtherCert string // a client certificate signed by another CA ...
	OtherKey  string // ... and its key
}

// startSecureKafka starts a broker with, besides its PLAINTEXT listener, a
// SASL_SSL listener taking SCRAM-SHA-512 and SCRAM-SHA-256 (one user with a
// different password per mechanism, created at storage format time) with a
// PEM server key store, a SASL_PLAINTEXT listener taking PLAIN (JAAS
// users), and an SSL listener requiring a client certificate signed by the
// test CA (PEM trust store). It returns the broker and the PEM files for
// clients.
func startSecureKafka(t *testing.T) (*kafkaBroker, *securePKI) {
	t.Helper()
	pki := testutil.NewLoopbackPKI(t)
	other := testutil.NewLoopbackPKI(t) // an unrelated CA the broker does not trust
	dir := t.TempDir()
	files := &securePKI{
		CA:        filepath.Join(dir, "ca.pem"),
		Cert:      filepath.Join(dir, "client.pem"),
		Key:       filepath.Join(dir, "client-key.pem"),
		OtherCert: filepath.Join(dir, "other-client.pem"),
		OtherKey:  filepath.Join(dir, "other-client-key.pem"),
	}
	mustWrite(t, files.CA, string(pki.CAPEM))
	mustWrite(t, files.Cert, string(pki.ClientCertPEM))
	mustWrite(t, files.Key, string(pki.ClientKeyPEM))
	mustWrite(t, files.OtherCert, string(other.ClientCertPEM))
	mustWrite(t, files.OtherKey, string(other.ClientKeyPEM))
	ssl, txt, mtls := strings.ToLower(secListenSSL), strings.ToLower(secListenTXT), strings.ToLower(secListenMTLS)
	props := fmt.Sprintf(`listener.name.%[1]s.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.%[1]s.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.%[1]s.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.%[1]s.ssl.keystore.type=PEM
listener.name.%[1]s.ssl.keystore.key=%[3]s
listener.name.%[1]s.ssl.keystore.certificate.chain=%[4]s
listener.name.%[2]s.sasl.enabled.mechanisms=PLAIN
listener.name.%[2]s.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_%[5]s="%[6]s";
listener.name.%[7]s.ssl.keystore.type=PEM
listener.name.%[7]s.ssl.keystore.key=%[3]s
listener.name.%[7]s.ssl.keystore.certificate.chain=%[4]s
listener.name.%[7]s.ssl.truststore.type=PEM
listener.name.%[7]s.ssl.truststore.certificates=%[8]s
listener.name.%[7]s.ssl.client.auth=required
`, ssl, txt, propValue(pki.KeyPEM), propValue(pki.ChainPEM), secUser, plainSecret, mtls, propValue(pki.CAPEM))
	b := startKafkaWith(t, kafkaConfig{
		Listeners: []kafkaListener{
			{Name: secListenSSL, Protocol: "SASL_SSL"},
			{Name: secListenTXT, Protocol: "SASL_PLAINTEXT"},
			{Name: secListenMTLS, Protocol: "SSL"},
		},
		Props: props,
		FormatArgs: []string{
			"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", secUser, scramSecret),
			"--add-scram", fmt.Sprintf("SCRAM-SHA-256=[name=%s,password=%s]", secUser, scram256Secret),
		},
	})
	return b, files
}

// TestKafkaSecurity: `kappa ingest` against a real Apache Kafka broker's
// SASL_SSL (SCRAM-SHA-512 and SCRAM-SHA-256, server certificate from a test
// CA), SASL_PLAINTEXT (PLAIN) and SSL with required client certificates
// (mutual TLS) listeners; every message must land exactly once, and bad
// credentials, an unknown CA or a missing or untrusted client certificate
// must stop the daemon at start with an authentication error.
func TestKafkaSecurity(t *testing.T) {
	ctx := t.Context()
	py := python(t)
	if out, err := exec.CommandContext(ctx, kappaBin, "ingest", "--help").CombinedOutput(); err != nil && !bytes.Contains(out, []byte("usage")) {
		record("kafka", "kappa ingest TLS/SASL", "-", "SKIP: ingest not available")
		t.Skipf("kappa ingest not available: %v: %s", err, out)
	}
	started := time.Now()
	broker, files := startSecureKafka(t)
	caFile := files.CA
	t.Logf("kafka broker (PLAINTEXT %s, SASL_SSL %s, SASL_PLAINTEXT %s, SSL+client auth %s) ready in %s", broker.Bootstrap,
		broker.Addr[secListenSSL], broker.Addr[secListenTXT], broker.Addr[secListenMTLS], time.Since(started).Round(time.Millisecond))

	// produced through the PLAINTEXT listener, consumed through the secured ones
	const n, parts, topic = 3000, 3, "secure"
	prod := startProducer(t, py, broker.Bootstrap, topic, parts, n, 1000, 0)
	prod.wait(t)

	scram := []string{"--tls", "--tls-ca", caFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", secUser}
	scram256 := []string{"--tls", "--tls-ca", caFile, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", secUser}
	plain := []string{"--sasl-mechanism", "PLAIN", "--sasl-username", secUser}
	mtls := []string{"--tls", "--tls-ca", caFile}

	ingestAll := func(t *testing.T, name, addr, group string, flags []string, engine string) {
		url := filepath.Join(t.TempDir(), name)
		began := time.Now()
		d := startIngest(t, name, url, addr, topic, group, append(flags, "--until-end")...)
		took := waitUntilEnd(t, d, 2*time.Minute, began)
		rows := checkExactlyOnce(ctx, t, url, group, topic, prod, parts)
		record("kafka", engine, fmt.Sprintf("%d msgs exactly once, --until-end in %s", rows, took.Round(100*time.Millisecond)),
			passFail(!t.Failed()))
	}

	t.Run("sasl-ssl-scram-sha-512", func(t *testing.T) {
		ingestAll(t, "sec-scram", broker.Addr[secListenSSL], "sec-scram",
			append(scram, "--sasl-password", scramSecret),
			"Apache Kafka 3.9.1 SASL_SSL SCRAM-SHA-512 -> kappa ingest --tls")
	})

	t.Run("sasl-ssl-scram-sha-256", func(t *testing.T) {
		ingestAll(t, "sec-scram256", broker.Addr[secListenSSL], "sec-scram256",
			append(scram256, "--sasl-password", scram256Secret),
			"Apache Kafka 3.9.1 SASL_SSL SCRAM-SHA-256 -> kappa ingest --tls")
	})

	t.Run("ssl-client-cert", func(t *testing.T) {
		ingestAll(t, "sec-mtls", broker.Addr[secListenMTLS], "sec-mtls",
			append(mtls, "--tls-cert", files.Cert, "--tls-key", files.Key),
			"Apache Kafka 3.9.1 SSL client auth required -> kappa ingest --tls-cert")
	})

	t.Run("sasl-plaintext-plain", func(t *testing.T) {
		ingestAll(t, "sec-plain", broker.Addr[secListenTXT], "sec-plain",
			append(plain, "--sasl-password", plainSecret),
			"Apache Kafka 3.9.1 SASL_PLAINTEXT PLAIN -> kappa ingest")
	})

	t.Run("rejected-at-start", func(t *testing.T) {
		cases := []struct {
			name, addr string
			flags      []string
		}{
			{"scram-wrong-password", broker.Addr[secListenSSL], append(scram, "--sasl-password", "wrong-"+scramSecret)},
			// the SCRAM-SHA-512 password does not log in with SCRAM-SHA-256
			{"scram-256-with-512-password", broker.Addr[secListenSSL], append(scram256, "--sasl-password", scramSecret)},
			{"plain-wrong-password", broker.Addr[secListenTXT], append(plain, "--sasl-password", "wrong-"+plainSecret)},
			// system roots do not know the test CA
			{"tls-unknown-ca", broker.Addr[secListenSSL], []string{"--tls", "--sasl-mechanism", "SCRAM-SHA-512",
				"--sasl-username", secUser, "--sasl-password", scramSecret}},
			// the listener requires a client certificate
			{"mtls-no-client-cert", broker.Addr[secListenMTLS], mtls},
			// signed by a CA the broker does not trust
			{"mtls-untrusted-client-cert", broker.Addr[secListenMTLS], append(mtls, "--tls-cert", files.OtherCert, "--tls-key", files.OtherKey)},
		}
		var got []string
		for _, c := range cases {
			url := filepath.Join(t.TempDir(), c.name)
			began := time.Now()
			d := startIngest(t, "sec-"+c.name, url, c.addr, topic, "sec-"+c.name, c.flags...)
			var err error
			select {
			case err = <-d.done:
			case <-time.After(10 * time.Second):
				d.kill(t)
				t.Errorf("%s: ingest still running 10s after start, want a fast exit\n%s", c.name, d.logTail())
				continue
			}
			took := time.Since(began)
			logb, _ := os.ReadFile(d.log)
			var exit *exec.ExitError
			switch {
			case err == nil:
				t.Errorf("%s: ingest exited 0, want a failure\n%s", c.name, d.logTail())
			case !errors.As(err, &exit) || exit.ExitCode() <= 0:
				t.Errorf("%s: ingest ended with %v, want a non-zero exit status", c.name, err)
			case !bytes.Contains(logb, []byte("authentication")):
				t.Errorf("%s: stderr does not mention authentication:\n%s", c.name, d.logTail())
			default:
				t.Logf("%s: exit %d after %s: %s", c.name, exit.ExitCode(), took.Round(time.Millisecond), lastLine(string(logb)))
				got = append(got, fmt.Sprintf("%s exit %d in %.1fs", c.name, exit.ExitCode(), took.Seconds()))
			}
		}
		record("kafka", "Apache Kafka 3.9.1 rejects bad credentials/certificates -> kappa ingest",
			strings.Join(got, "; "), passFail(!t.Failed()))
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
