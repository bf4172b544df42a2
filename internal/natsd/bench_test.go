package natsd

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The fan-out benchmarks compare natsd with nats-server in the same run:
// one nats.go publisher, four nats.go subscribers on their own
// connections, 128-byte messages over TCP loopback.
//
//	go test -run '^$' -bench Fanout -benchtime 20000x ./internal/natsd/
//
// Latency has one message in flight: the next is published once all four
// subscribers have the last; each subscriber's delay is a sample.
// Throughput keeps at most fanoutWindow messages ahead of the slowest
// subscriber (so that nobody is a slow consumer and nothing is dropped)
// and reports messages per second per subscriber.
const (
	fanoutSubs   = 4
	fanoutSize   = 128
	fanoutWindow = 8192
)

// benchServers starts each server under comparison and returns its
// client URL.
func benchServers(b *testing.B) map[string]string {
	s, err := Start(Options{User: testUser, Password: testPass})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Username: testUser, Password: testPass,
	})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(ns.Shutdown)
	return map[string]string{
		"natsd":       s.ClientURL(),
		"nats-server": fmt.Sprintf("nats://%s:%s@%s", testUser, testPass, ns.Addr()),
	}
}

func BenchmarkFanout(b *testing.B) {
	urls := benchServers(b)
	for _, name := range []string{"natsd", "nats-server"} {
		b.Run(name+"/latency", func(b *testing.B) { fanoutLatency(b, urls[name]) })
		b.Run(name+"/throughput", func(b *testing.B) { fanoutThroughput(b, urls[name]) })
	}
}

func benchConnect(b *testing.B, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func fanoutLatency(b *testing.B, url string) {
	samples := make(chan time.Duration, fanoutSubs)
	for range fanoutSubs {
		nc := benchConnect(b, url)
		nc.Subscribe("bench.lat", func(m *nats.Msg) {
			sent := int64(binary.LittleEndian.Uint64(m.Data))
			samples <- time.Duration(time.Now().UnixNano() - sent)
		})
		nc.Flush()
	}
	pub := benchConnect(b, url)
	msg := make([]byte, fanoutSize)
	all := make([]time.Duration, 0, b.N*fanoutSubs)
	b.ResetTimer()
	for range b.N {
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		if err := pub.Publish("bench.lat", msg); err != nil {
			b.Fatal(err)
		}
		for range fanoutSubs {
			all = append(all, <-samples)
		}
	}
	b.StopTimer()
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

func fanoutThroughput(b *testing.B, url string) {
	var counts [fanoutSubs]atomic.Int64
	done := make(chan struct{}, fanoutSubs)
	total := int64(b.N)
	for i := range fanoutSubs {
		nc := benchConnect(b, url)
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { b.Errorf("subscriber %d: %v", i, err) })
		nc.Subscribe("bench.tput", func(*nats.Msg) {
			if counts[i].Add(1) == total {
				done <- struct{}{}
			}
		})
		nc.Flush()
	}
	pub := benchConnect(b, url)
	msg := make([]byte, fanoutSize)
	slowest := func() int64 {
		low := counts[0].Load()
		for i := 1; i < fanoutSubs; i++ {
			low = min(low, counts[i].Load())
		}
		return low
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := range total {
		for i-slowest() >= fanoutWindow {
			time.Sleep(20 * time.Microsecond)
		}
		if err := pub.Publish("bench.tput", msg); err != nil {
			b.Fatal(err)
		}
	}
	pub.Flush()
	for range fanoutSubs {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("subscribers got %d..%d of %d", slowest(), counts[0].Load(), total)
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s/sub")
	b.ReportMetric(0, "ns/op")
}
