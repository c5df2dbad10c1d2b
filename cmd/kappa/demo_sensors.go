package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// demoTopic is the topic the demo's sensors produce to.
const demoTopic = "iot-readings"

// demoPartitions is the number of partitions of demoTopic.
const demoPartitions = 3

// startDemoBroker starts an in-process Kafka-protocol broker on 127.0.0.1
// (a random port) with demoTopic seeded. The caller closes it.
func startDemoBroker() (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(demoPartitions, demoTopic),
	)
	if err != nil {
		return nil, fmt.Errorf("start in-process broker: %w", err)
	}
	return c, nil
}

// demoSite is one site of sensors and its climate.
type demoSite struct {
	name     string
	temp     float64 // typical temperature, °C
	humidity float64 // typical relative humidity, %
}

var demoSites = []demoSite{
	{"berlin", 14, 62},
	{"lisbon", 21, 70},
	{"oslo", 6, 78},
	{"turin", 18, 55},
}

// demoDevicesPerSite is how many sensors each site has.
const demoDevicesPerSite = 6

type demoDevice struct {
	id      string
	site    *demoSite
	battery float64 // %
	offset  float64 // this sensor's calibration offset, °C
}

// demoReading is one message of a sensor.
type demoReading struct {
	Device      string  `json:"device"`
	Site        string  `json:"site"`
	TS          string  `json:"ts"`
	Temperature float64 `json:"temperature"`
	Humidity    float64 `json:"humidity"`
	Battery     int     `json:"battery"`
}

// demoSensors generates the IoT readings of the demo: deterministic values
// (a fixed seed), timestamps from the wall clock. Among the messages it
// sends are a few malformed ones (for the dead-letter table) and a burst of
// late readings from a gateway that was offline since yesterday.
type demoSensors struct {
	rng     *rand.Rand
	devices []*demoDevice
	sent    int // messages generated so far

	// malformed maps a message number to a bad payload sent in its place.
	malformed map[int]func(now time.Time) string
	// Messages [lateFrom, lateFrom+late) are late readings of lateDevice.
	lateFrom, late int
	lateDevice     *demoDevice
}

// newDemoSensors plans total messages: total-len(malformed) good readings,
// of which some are late, and the malformed ones spread evenly.
func newDemoSensors(total int) *demoSensors {
	g := &demoSensors{rng: rand.New(rand.NewPCG(2024, 7))}
	for i := range demoSites {
		s := &demoSites[i]
		for d := range demoDevicesPerSite {
			g.devices = append(g.devices, &demoDevice{
				id:      fmt.Sprintf("%s-%02d", s.name, d+1),
				site:    s,
				battery: 60 + 40*g.rng.Float64(),
				offset:  g.rng.NormFloat64() * 0.8,
			})
		}
	}
	bad := []func(now time.Time) string{
		// A value of the wrong type.
		func(now time.Time) string {
			return fmt.Sprintf(`{"device":"lisbon-03","site":"lisbon","ts":%q,"temperature":"hot","humidity":71.0,"battery":80}`, now.Format(time.RFC3339Nano))
		},
		// Not JSON: a sensor with old firmware speaking a line protocol.
		func(time.Time) string { return "oslo-02 temperature=5.9 humidity=80.1" },
		// A required field missing.
		func(now time.Time) string {
			return fmt.Sprintf(`{"site":"turin","ts":%q,"temperature":19.5}`, now.Format(time.RFC3339Nano))
		},
		// Cut off in transit.
		func(time.Time) string { return `{"device":"berlin-05","site":"berl` },
	}
	g.malformed = map[int]func(time.Time) string{}
	if total >= 4*len(bad) {
		for i, f := range bad {
			g.malformed[(i+1)*total/(len(bad)+1)] = f
		}
	}
	// Between the second and third malformed message: no overlap.
	g.late = min(20, total/10)
	g.lateFrom = total * 9 / 20
	g.lateDevice = g.devices[len(g.devices)-1]
	return g
}

// next returns count messages, as sent at now.
func (g *demoSensors) next(now time.Time, count int) []kafka.Message {
	msgs := make([]kafka.Message, 0, count)
	for range count {
		i := g.sent
		g.sent++
		if bad, ok := g.malformed[i]; ok {
			msgs = append(msgs, kafka.Message{Key: []byte("unknown"), Value: []byte(bad(now))})
			continue
		}
		dev := g.devices[g.rng.IntN(len(g.devices))]
		ts := now.Add(-time.Duration(g.rng.IntN(1500)) * time.Millisecond)
		if k := i - g.lateFrom; k >= 0 && k < g.late {
			// Buffered since yesterday, one reading every 10 minutes.
			dev = g.lateDevice
			ts = now.Add(-26*time.Hour + time.Duration(k)*10*time.Minute)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(dev.id), Value: g.reading(dev, ts)})
	}
	return msgs
}

// counts returns how many of the first n messages are malformed and late.
func (g *demoSensors) counts(n int) (malformed, late int) {
	for i := range n {
		_, bad := g.malformed[i]
		switch {
		case bad:
			malformed++
		case i >= g.lateFrom && i < g.lateFrom+g.late:
			late++
		}
	}
	return malformed, late
}

func (g *demoSensors) reading(d *demoDevice, ts time.Time) []byte {
	d.battery = max(5, d.battery-0.05*g.rng.Float64())
	r := demoReading{
		Device:      d.id,
		Site:        d.site.name,
		TS:          ts.UTC().Format("2006-01-02T15:04:05.000Z"),
		Temperature: round1(d.site.temp + d.offset + g.rng.NormFloat64()*1.5),
		Humidity:    round1(min(100, max(0, d.site.humidity+g.rng.NormFloat64()*4))),
		Battery:     int(d.battery),
	}
	b, _ := json.Marshal(r) // cannot fail: strings and finite numbers
	return b
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// demoProducer sends the sensors' messages, keyed by device (so each
// device's readings stay in order on one partition).
func newDemoProducer(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        demoTopic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
}

// produceFor sends total messages over about d, in ticks of 100 ms, and
// returns how many it sent.
func produceFor(ctx context.Context, w *kafka.Writer, g *demoSensors, total int, d time.Duration) (int, error) {
	const tick = 100 * time.Millisecond
	ticks := max(1, int(d/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	sent := 0
	for k := range ticks {
		n := (k+1)*total/ticks - sent
		if n > 0 {
			if err := w.WriteMessages(ctx, g.next(time.Now().UTC(), n)...); err != nil {
				return sent, fmt.Errorf("produce: %w", err)
			}
			sent += n
		}
		if k == ticks-1 {
			break
		}
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-t.C:
		}
	}
	return sent, nil
}
