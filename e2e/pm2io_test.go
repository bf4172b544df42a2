package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

// TestPM2IOMetrics: a Node.js app that reports metrics the @pm2/io way
// (axm:monitor on its IPC channel, about once a second, some values as
// strings) has them as app metrics, in describe and on /metrics; they are
// not relayed on the bus, where its own messages still are.
func TestPM2IOMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	script := filepath.Join(e.dir, "io.js")
	app := `const report = () => process.send({ type: 'axm:monitor', data: {
  'Realtime user': { historic: true, unit: 'users', value: 42 },
  'Heap Size': { historic: true, unit: 'MiB', type: 'internal/v8/heap/total', value: '9.23' },
  'p95 latency (ms)': { value: 'n/a' },
} });
report();
setInterval(report, 100);
process.send({ type: 'process:msg', topic: 'hello', data: { n: 1 } });
`
	if err := os.WriteFile(script, []byte(app), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := e.subscribe("tend.msg.>")
	e.ok("start", script, "--name", "io")
	e.waitStatus("io", api.StatusOnline)
	cl := client.New(filepath.Join(e.home, "tend.sock"))
	waitFor(t, "the app's @pm2/io metrics on /metrics", func() bool {
		b, err := cl.Metrics(context.Background())
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		fams := parseMetrics(t, b)
		users, _ := value(fams, "tend_app_realtime_user", "io")
		heap, _ := value(fams, "tend_app_heap_size", "io")
		return users == 42 && heap == 9.23
	})
	if out := e.ok("describe", "io"); !strings.Contains(out, "realtime_user") || strings.Contains(out, "p95") {
		t.Errorf("describe io: want realtime_user, and no metric for a value that is not a number:\n%s", out)
	}
	sub.waitMsg("the app's own message on the bus", func(m api.BusMessage) bool { return strings.Contains(m.Data, `"process:msg"`) })
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, m := range sub.msgs {
		if strings.Contains(m.Data, "axm:") {
			t.Errorf("@pm2/io's internal message on the bus: %s", m.Data)
		}
	}
}
