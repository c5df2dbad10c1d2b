package ingest

import (
	"context"
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

// kafkaLogger adapts kafka-go's Printf logger to slog at debug level.
type kafkaLogger struct {
	log   func(msg string, args ...any)
	where string
}

func (k kafkaLogger) Printf(format string, args ...any) {
	k.log("kafka "+k.where, "msg", fmt.Sprintf(format, args...))
}
