package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// saslMechanism builds the kafka-go SASL mechanism, or nil when disabled.
func saslMechanism(s SASL) (sasl.Mechanism, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("%w: SASL mechanism %q", ErrInvalidOptions, s.Mechanism)
}

func newDialer(o *Options) (*kafka.Dialer, sasl.Mechanism, error) {
	mech, err := saslMechanism(o.SASL)
	if err != nil {
		return nil, nil, err
	}
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: o.TLS, SASLMechanism: mech}, mech, nil
}

// topicPartition names one partition of one topic.
type topicPartition struct {
	topic     string
	partition int
}

func (tp topicPartition) String() string { return tp.topic + "/" + strconv.Itoa(tp.partition) }

// appID is the txn appId recording this partition's last committed offset.
func appID(prefix string, tp topicPartition) string {
	return prefix + "-" + tp.topic + "-" + strconv.Itoa(tp.partition)
}

// offsetRange is the first and next offsets of a partition.
type offsetRange struct{ first, end int64 }

// partitionCounts returns how many partitions each topic has (0 for a topic
// that does not exist yet).
func partitionCounts(ctx context.Context, dialer *kafka.Dialer, brokers, topics []string) (map[string]int, error) {
	conn, err := dialAny(ctx, dialer, brokers)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	counts := make(map[string]int, len(topics))
	for _, t := range topics {
		parts, err := conn.ReadPartitions(t)
		switch {
		case errors.Is(err, kafka.UnknownTopicOrPartition):
			counts[t] = 0
		case err != nil:
			return nil, fmt.Errorf("read partitions of %s: %w", t, err)
		default:
			counts[t] = len(parts)
		}
	}
	return counts, nil
}

func dialAny(ctx context.Context, dialer *kafka.Dialer, brokers []string) (*kafka.Conn, error) {
	var err error
	for _, b := range brokers {
		var conn *kafka.Conn
		if conn, err = dialer.DialContext(ctx, "tcp", b); err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("dial brokers: %w", err)
}

// partitionOffsets lists every partition of the topics with its first
// offset and end offset (the offset the next produced record will get).
func partitionOffsets(ctx context.Context, dialer *kafka.Dialer, brokers, topics []string) (map[topicPartition]offsetRange, error) {
	conn, err := dialAny(ctx, dialer, brokers)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topics...)
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("read partitions of %v: %w", topics, err)
	}
	out := map[topicPartition]offsetRange{}
	for _, p := range parts {
		leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
		lc, err := dialer.DialLeader(ctx, "tcp", leader, p.Topic, p.ID)
		if err != nil {
			return nil, fmt.Errorf("dial leader of %s/%d: %w", p.Topic, p.ID, err)
		}
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil {
			return nil, fmt.Errorf("read offsets of %s/%d: %w", p.Topic, p.ID, err)
		}
		out[topicPartition{p.Topic, p.ID}] = offsetRange{first: first, end: last}
	}
	return out, nil
}

// kafkaLogger adapts kafka-go's Printf logger to slog: log (debug level)
// for the routine errors of a client that retries by itself, escalate (when
// set) for messages about rejected credentials or certificates, which no
// retry fixes, so a misconfigured daemon does not loop silently.
type kafkaLogger struct {
	log      func(msg string, args ...any)
	escalate func(msg string, args ...any)
	where    string
}

func (k kafkaLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if k.escalate != nil && looksLikeAuthFailure(msg) {
		k.escalate("kafka "+k.where+": broker rejected the connection's credentials or certificate", "detail", msg)
		return
	}
	k.log("kafka "+k.where, "detail", msg)
}

// looksLikeAuthFailure recognises kafka-go's texts for SASL and TLS
// failures (its consumer group only hands us formatted text).
func looksLikeAuthFailure(msg string) bool {
	for _, s := range []string{"SASL", "x509:", "tls:", "Authorization Failed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// ErrBrokerAuth is wrapped by the error Run returns when the brokers reject
// the daemon's SASL credentials, its TLS handshake (unknown certificate
// authority, wrong host name, TLS against a plaintext listener, a client
// certificate missing or refused) or its
// authorization to describe the topics. Retrying cannot fix these, so the
// daemon stops at start instead of waiting for a consumer group that never
// forms; a failure after a successful start is logged at error level and
// retried (credentials may be rotated on the broker), with /readyz not ready
// until a generation starts.
var ErrBrokerAuth = errors.New("kafka broker authentication failed")

// isAuthError reports whether err is a definitive authentication,
// authorization or TLS verification failure: a SASL or authorization error
// code, our verification of the broker's certificate, or a TLS alert from
// the broker (crypto/tls reports an alert the peer sends as a net.OpError
// "remote error": a client certificate missing or not trusted, which under
// TLS 1.3 surfaces only on the first read after the handshake).
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	authErrors := []error{
		kafka.SASLAuthenticationFailed, kafka.IllegalSASLState, kafka.UnsupportedSASLMechanism,
		kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed, kafka.GroupAuthorizationFailed,
	}
	for _, e := range authErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		alert      tls.AlertError
		recordHead tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &recordHead) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// authAttempts is how often checkBrokers tries before calling a rejection
// definitive (a broker restarting mid-handshake also closes the connection,
// which kafka-go reports as a SASL failure).
const authAttempts = 3

// checkBrokers connects to the brokers once (TLS, SASL, a metadata request
// for the topics) before the daemon joins its group. A definitive
// authentication failure is returned wrapping ErrBrokerAuth; any other
// failure (brokers down, network) is logged at error level and left to the
// consumer group's retries.
func (d *Daemon) checkBrokers(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= authAttempts; attempt++ {
		_, err = partitionCounts(ctx, d.dialer, d.opts.Brokers, d.opts.Topics)
		if err == nil || !isAuthError(err) || ctx.Err() != nil {
			break
		}
		if attempt < authAttempts {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			}
		}
	}
	switch {
	case err == nil:
		return nil
	case isAuthError(err):
		d.m.Errors.Add(1)
		d.log.Error("kafka brokers rejected the daemon's credentials or TLS handshake", "brokers", d.opts.Brokers, "sasl", d.opts.SASL.Mechanism, "tls", d.opts.TLS != nil, "err", err)
		return fmt.Errorf("%w: brokers %v (SASL %q, TLS %v): %w", ErrBrokerAuth, d.opts.Brokers, d.opts.SASL.Mechanism, d.opts.TLS != nil, err)
	case ctx.Err() != nil:
		return nil
	default:
		d.m.Errors.Add(1)
		d.log.Error("cannot reach the kafka brokers; retrying", "brokers", d.opts.Brokers, "err", err)
		return nil
	}
}

// endOffsetsInterval is how often a generation refreshes the end offsets of
// its partitions for the lag metric (the partition watcher's cadence).
var endOffsetsInterval = partitionWatchInterval

// offsetClient lists partition offsets with one ListOffsets request per
// partition leader (kafka-go's Transport splits the request by leader).
type offsetClient struct {
	c  *kafka.Client
	tr *kafka.Transport
}

func newOffsetClient(o *Options, dialer *kafka.Dialer) *offsetClient {
	tr := &kafka.Transport{
		DialTimeout:    dialer.Timeout,
		TLS:            dialer.TLS,
		SASL:           dialer.SASLMechanism,
		MetadataTopics: o.Topics,
		ClientID:       "kappa-ingest-lag",
	}
	return &offsetClient{c: &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: 10 * time.Second, Transport: tr}, tr: tr}
}

func (c *offsetClient) close() { c.tr.CloseIdleConnections() }

// offsets returns the first (when first is set) or the end offset of each
// partition; partitions whose offset the broker could not give are missing.
func (c *offsetClient) offsets(ctx context.Context, tps []topicPartition, first bool) (map[topicPartition]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range tps {
		r := kafka.LastOffsetOf(tp.partition)
		if first {
			r = kafka.FirstOffsetOf(tp.partition)
		}
		req.Topics[tp.topic] = append(req.Topics[tp.topic], r)
	}
	res, err := c.c.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := make(map[topicPartition]int64, len(tps))
	var errs []error
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error))
				continue
			}
			v := p.LastOffset
			if first {
				v = p.FirstOffset
			}
			if v >= 0 {
				out[topicPartition{topic, p.Partition}] = v
			}
		}
	}
	return out, errors.Join(errs...)
}

// initialOffsets reads the first and end offsets of the generation's
// assigned partitions before its readers start: the end offsets resolve
// Start=latest to a concrete offset (so "latest" means the end when the
// generation starts, and the lag is known before the first fetch), the first
// offsets give the lag of partitions that have never been committed. On error
// it logs and returns what it has (possibly nothing).
func (g *generation) initialOffsets(ctx, gctx context.Context, oc *offsetClient) map[topicPartition]offsetRange {
	var tps []topicPartition
	for topic, pas := range g.gen.Assignments {
		for _, pa := range pas {
			tps = append(tps, topicPartition{topic, pa.ID})
		}
	}
	if len(tps) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stop := context.AfterFunc(gctx, cancel)
	defer stop()
	ends, err := oc.offsets(rctx, tps, false)
	if err != nil {
		g.logOffsetsErr(err)
	}
	firsts, err := oc.offsets(rctx, tps, true)
	if err != nil {
		g.logOffsetsErr(err)
	}
	out := make(map[topicPartition]offsetRange, len(ends))
	for tp, end := range ends {
		first, ok := firsts[tp]
		if !ok {
			first = -1
		}
		out[tp] = offsetRange{first: first, end: end}
	}
	return out
}

func (g *generation) logOffsetsErr(err error) {
	if isAuthError(err) {
		g.d.log.Error("read partition end offsets: broker rejected the credentials", "err", err)
		return
	}
	g.d.log.Debug("read partition end offsets", "err", err)
}

// publishOffsets records, for the lag metric, the end offsets of the
// generation's partitions and the offset after what the table holds for
// each.
func (g *generation) publishOffsets(ranges map[topicPartition]offsetRange) {
	for _, ps := range g.order {
		if r, ok := ranges[ps.tp]; ok {
			g.d.m.SetEndOffset(ps.tp.topic, ps.tp.partition, r.end)
		}
		g.publishCommitted(ps)
	}
}

// publishCommitted records the offset after the last one the table holds for
// the partition (its start offset when nothing was committed yet); unknown
// before a never-committed partition's first record when the log start could
// not be read.
func (g *generation) publishCommitted(ps *partState) {
	next := int64(-1)
	switch {
	case ps.expect >= 0:
		next = ps.expect + 1
	case ps.origin >= 0:
		next = ps.origin
	case ps.origin == kafka.FirstOffset && ps.logStart >= 0:
		next = ps.logStart
	}
	if next >= 0 {
		g.d.m.SetCommittedOffset(ps.tp.topic, ps.tp.partition, next)
	}
}

// publishAllCommitted is publishCommitted for every partition (after a
// flush or a reseek).
func (g *generation) publishAllCommitted() {
	for _, ps := range g.order {
		g.publishCommitted(ps)
	}
}

// watchEnds refreshes the end offsets of the generation's partitions every
// endOffsetsInterval, so the lag of an idle partition, or of a consumer
// that is stalled (fetching nothing, or unable to commit), stays current.
// It closes oc when the generation ends.
func (g *generation) watchEnds(gctx context.Context, oc *offsetClient, tps []topicPartition) {
	defer oc.close()
	if len(tps) == 0 {
		return
	}
	every(gctx, endOffsetsInterval, func() bool {
		ends, err := oc.offsets(gctx, tps, false)
		if err != nil && gctx.Err() == nil {
			g.logOffsetsErr(err)
		}
		for tp, end := range ends {
			g.d.m.SetEndOffset(tp.topic, tp.partition, end)
		}
		return true
	})
}
