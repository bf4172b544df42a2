package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/bus"
)

// TestSlowSubscriber: a `tend bus sub` that stops reading holds at most
// subscribeBuffer bytes in the daemon; what did not fit is dropped and
// counted in the next message it gets.
func TestSlowSubscriber(t *testing.T) {
	b := bus.New(bus.Config{Home: t.TempDir()})
	defer b.Close()
	d := &daemon{bus: b}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	subscribed := make(chan struct{})
	release := make(chan struct{})
	got := make(chan api.BusMessage, 64)
	done := make(chan error, 1)
	go func() {
		blocked := false
		done <- d.BusSubscribe(ctx, "big", func() error { close(subscribed); return nil }, func(m api.BusMessage) error {
			if !blocked {
				blocked = true
				<-release // the client stops reading after the first message
			}
			got <- m
			return nil
		})
	}()
	<-subscribed
	chunk := strings.Repeat("x", 1000<<10)
	const sent = 40 // 40 MB against a 16 MiB buffer
	for range sent {
		if err := b.PublishStarted("big", []byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	// Then "end" until it arrives: it carries the count of whatever was
	// dropped since the last message that got through.
	var received int
	var dropped uint64
	timeout, tick := time.After(20*time.Second), time.Tick(50*time.Millisecond)
wait:
	for {
		select {
		case m := <-got:
			dropped += m.Dropped
			if m.Data == "end" {
				break wait
			}
			received++
		case <-tick:
			if err := b.PublishStarted("big", []byte("end")); err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("no end: received %d, dropped %d of %d", received, dropped, sent)
		}
	}
	if received+int(dropped) < sent {
		t.Errorf("received %d and dropped %d of %d: some went missing uncounted", received, dropped, sent)
	}
	if received == sent || dropped == 0 {
		t.Errorf("received %d of %d with nothing dropped: a stalled subscriber held it all", received, sent)
	}
	if st, _ := b.Status(false, false); st.Dropped == 0 && dropped == 0 {
		t.Error("no drops counted anywhere")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("BusSubscribe: %v", err)
	}
}
