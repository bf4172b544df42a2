package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// Node.js instances get Node's own IPC channel (NODE_CHANNEL_FD, "json"
// serialization: one JSON value a line), as under pm2, so the code pm2
// users wrote keeps working: process.send('ready') is readiness with
// wait_ready, process.send({type: 'process:msg', topic, data}) reaches the
// bus, process.on('message') gets what `tend send` sends and 'shutdown'
// with shutdown_with_message, and actions registered the @pm2/io way
// (axm:action, axm:reply) answer `tend trigger`.

// maxIPCLine bounds one message from an app; a longer one is skipped.
const maxIPCLine = 1 << 20

// ipcWriteTimeout bounds a write to an app that does not read its
// channel: the message is then lost, and the caller told.
const ipcWriteTimeout = 2 * time.Second

// ipcChannel is the daemon's end of one process's IPC channel.
type ipcChannel struct {
	f *os.File
	// wmu keeps whole messages apart.
	wmu chanMutex

	// Guarded by Supervisor.mu.
	actions map[string]bool          // registered with axm:action
	waiters map[string][]chan []byte // triggers waiting for axm:reply, by action
}

// chanMutex is a mutex whose Lock can give up.
type chanMutex chan struct{}

func newIPCChannel(f *os.File) *ipcChannel {
	return &ipcChannel{f: f, wmu: make(chanMutex, 1), actions: map[string]bool{}, waiters: map[string][]chan []byte{}}
}

// send writes one JSON value and a newline.
func (c *ipcChannel) send(msg []byte) error {
	deadline := time.Now().Add(ipcWriteTimeout)
	select {
	case c.wmu <- struct{}{}:
	case <-time.After(ipcWriteTimeout):
		return errors.New("its IPC channel is busy: the app does not read it")
	}
	defer func() { <-c.wmu }()
	if err := c.f.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("IPC channel: %w", err)
	}
	line := make([]byte, 0, len(msg)+1)
	line = append(append(line, msg...), '\n')
	if _, err := c.f.Write(line); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.New("its IPC channel is full: the app does not read it")
		}
		return fmt.Errorf("IPC channel: %w", err)
	}
	return nil
}

// readIPC reads what a Node.js instance sends on its IPC channel until
// the channel closes (the process is gone).
func (s *Supervisor) readIPC(in *instance, run uint64, c *ipcChannel) {
	defer func() {
		c.f.Close()
		s.mu.Lock()
		if in.ipc == c {
			in.ipc = nil
		}
		for _, ws := range c.waiters {
			for _, w := range ws {
				close(w)
			}
		}
		c.waiters = nil
		s.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c.f, 64<<10)
	for {
		line, err := readLine(r)
		if len(line) > 0 {
			s.ipcMessage(in, run, c, line)
		}
		if err != nil {
			return
		}
	}
}

// readLine returns the next line without its newline; a line longer than
// maxIPCLine is skipped whole and returned empty.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			line = append(line, chunk...)
			if len(line) > maxIPCLine {
				line, long = nil, true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if err != nil {
			return bytes.TrimRight(line, "\r\n"), err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// ipcPacket is pm2's message shape: {type, topic, data}.
type ipcPacket struct {
	Type  string          `json:"type"`
	Topic json.RawMessage `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// ipcMessage handles one message from an instance.
func (s *Supervisor) ipcMessage(in *instance, run uint64, c *ipcChannel, line []byte) {
	var v any
	if json.Unmarshal(line, &v) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.run != run {
		return
	}
	if v == "ready" && in.app.spec.WaitReady {
		s.markReadyLocked(in)
		return
	}
	var p ipcPacket
	if _, isObject := v.(map[string]any); !isObject || json.Unmarshal(line, &p) != nil || p.Type == "" {
		s.publishIPCLocked(in, ipcPacket{Type: "process:msg", Data: line})
		return
	}
	switch p.Type {
	case "axm:action":
		var d struct {
			Name string `json:"action_name"`
		}
		if json.Unmarshal(p.Data, &d) == nil && d.Name != "" {
			c.actions[d.Name] = true
		}
	case "axm:reply":
		var d struct {
			Name   string          `json:"action_name"`
			Return json.RawMessage `json:"return"`
		}
		if json.Unmarshal(p.Data, &d) != nil {
			return
		}
		if ws := c.waiters[d.Name]; len(ws) > 0 {
			ret := d.Return
			if ret == nil {
				ret = json.RawMessage("null")
			}
			ws[0] <- ret
			c.waiters[d.Name] = ws[1:]
		}
	default:
		s.publishIPCLocked(in, p)
	}
}

// publishIPCLocked puts a message of an instance on the bus, if it runs.
func (s *Supervisor) publishIPCLocked(in *instance, p ipcPacket) {
	b := s.deps.Bus
	if b == nil || !b.Running() {
		return
	}
	msg := api.IPCMessage{
		App: in.app.spec.Name, Instance: in.slot, PID: in.pid,
		Type: p.Type, Topic: p.Topic, Data: p.Data, Time: s.deps.Clock.Now(),
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return
	}
	b.Publish(api.MsgSubject(in.app.spec.Name, in.slot), data)
}
