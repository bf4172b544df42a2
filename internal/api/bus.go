package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNoSubscriber means a request found nothing subscribed to its
// subject: nobody could answer it.
var ErrNoSubscriber = errors.New("nothing subscribes to the subject")

// Bus endpoints (docs/bus.md).
const (
	PathBus          = "/v1/bus"           // GET: BusStatus; POST: start the bus, then BusStatus
	PathBusPublish   = "/v1/bus/publish"   // POST BusPublish
	PathBusSubscribe = "/v1/bus/subscribe" // GET ?subject=S: NDJSON BusMessage, until the client leaves
	PathSend         = "/v1/send"          // POST SendRequest -> SendResult
	PathTrigger      = "/v1/trigger"       // POST TriggerRequest -> TriggerResult
)

// Variables an instance of an app with `bus: true` gets: the URL carries
// the credentials for clients that read them from it (Go, Python, Rust, the
// nats CLI); user and password are also given alone for those that do not
// (nats.js).
const (
	EnvBusURL      = "TEND_BUS_URL"
	EnvBusUser     = "TEND_BUS_USER"
	EnvBusPassword = "TEND_BUS_PASSWORD"
)

// Subjects tend itself uses; everything else on the bus belongs to the
// apps. <app> is SubjectToken(name).
//
//	tend.events.<app>.<event>              lifecycle events (Event), published by the daemon
//	tend.msg.<app>.<instance>              what a Node.js instance sends with process.send (IPCMessage)
//	tend.inbox.<app>.<instance>            messages for one instance (tend send); Node.js
//	                                       instances get them on process.on('message')
//	tend.action.<app>.<instance>.<action>  tend trigger's requests; the handler answers on the reply subject
const (
	SubjectEvents = "tend.events"
	SubjectMsg    = "tend.msg"
	SubjectInbox  = "tend.inbox"
	SubjectAction = "tend.action"
)

// SubjectToken turns an app name into one subject token. The characters
// a NATS token cannot hold (the separator '.', the wildcards '*' and '>',
// whitespace) and '%' itself are written %XX, as in a URL: two names never
// share a token, and a usual name (letters, digits, '-', '_') is its own.
func SubjectToken(name string) string {
	if !strings.ContainsAny(name, ".*>% \t\r\n\f\v") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.', '*', '>', '%', ' ', '\t', '\r', '\n', '\f', '\v':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// EventSubject is where the daemon publishes event ev of app.
func EventSubject(app, ev string) string {
	return SubjectEvents + "." + SubjectToken(app) + "." + ev
}

// MsgSubject is where a Node.js instance's process.send messages go.
func MsgSubject(app string, slot int) string {
	return SubjectMsg + "." + SubjectToken(app) + "." + strconv.Itoa(slot)
}

// InboxSubject is where messages for one instance go.
func InboxSubject(app string, slot int) string {
	return SubjectInbox + "." + SubjectToken(app) + "." + strconv.Itoa(slot)
}

// ActionSubject is where instance slot of app receives action's requests.
func ActionSubject(app string, slot int, action string) string {
	return SubjectAction + "." + SubjectToken(app) + "." + strconv.Itoa(slot) + "." + action
}

// Lifecycle events, the last token of their subject.
const (
	EventStart        = "start"         // a process started (pid)
	EventReady        = "ready"         // it is ready: its signal came, or its probe passed
	EventExit         = "exit"          // it ended (code or signal, uptime)
	EventRestart      = "restart"       // the restart policy or a user restarts it (delay)
	EventErrored      = "errored"       // it is given up on (reason)
	EventStop         = "stop"          // it was stopped (reason)
	EventDelete       = "delete"        // the app was deleted
	EventReloading    = "reloading"     // a reload of the app began
	EventReloaded     = "reloaded"      // the reload ended with every instance replaced
	EventReloadFailed = "reload_failed" // the reload stopped at a process that failed (reason)
	EventScale        = "scale"         // the app now has Instances instances
	// EventMemoryLimit: an instance went over max_memory_restart and is
	// being replaced (reason: how much, the limit, reload or restart).
	EventMemoryLimit = "memory_limit"
)

// Event is one lifecycle event, as published on EventSubject.
type Event struct {
	Event string    `json:"event"`
	App   string    `json:"app"`
	ID    int       `json:"id"`
	Time  time.Time `json:"time"`
	// Host is the machine's name: with hubs, events of several machines
	// meet on one subject.
	Host string `json:"host,omitempty"`
	// Instance is the slot, or -1 for an event of the whole app.
	Instance int    `json:"instance"`
	PID      int    `json:"pid,omitempty"`
	Code     *int   `json:"code,omitempty"`   // exit: the exit code, when not killed by a signal
	Signal   string `json:"signal,omitempty"` // exit: the signal that killed it
	Uptime   string `json:"uptime,omitempty"` // exit
	Delay    string `json:"delay,omitempty"`  // restart: how long until the new process starts
	Restarts int    `json:"restarts,omitempty"`
	// Instances is the new number of instances (scale).
	Instances int    `json:"instances,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// IPCMessage is a Node.js instance's process.send(value), as published on
// MsgSubject: pm2's {type, topic, data} packets keep their fields; any
// other value is in Data whole, with Type "process:msg".
type IPCMessage struct {
	App      string          `json:"app"`
	Host     string          `json:"host,omitempty"`
	Instance int             `json:"instance"`
	PID      int             `json:"pid"`
	Type     string          `json:"type"`
	Topic    json.RawMessage `json:"topic,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Time     time.Time       `json:"at"`
}

// BusStatus says whether the bus runs and how to reach it.
type BusStatus struct {
	Running bool `json:"running"`
	// URL has the credentials in it: the control socket is the owner's
	// alone, as is the file they are kept in.
	URL           string `json:"url,omitempty"`
	Port          int    `json:"port,omitempty"`
	User          string `json:"user,omitempty"`
	Password      string `json:"password,omitempty"`
	Clients       int    `json:"clients,omitempty"`
	Subscriptions int    `json:"subscriptions,omitempty"`
	InMsgs        uint64 `json:"in_msgs,omitempty"`
	OutMsgs       uint64 `json:"out_msgs,omitempty"`
	SlowConsumers uint64 `json:"slow_consumers,omitempty"`
	// Dropped counts messages the daemon's own subscribers (tend bus sub,
	// trigger replies) were too slow to take.
	Dropped uint64      `json:"dropped,omitempty"`
	Leafs   []LeafState `json:"leafs,omitempty"`
}

// LeafState is the link to one remote NATS server the bus joins as a leaf
// node.
type LeafState struct {
	URL       string    `json:"url"` // without the password
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// BusPublish is a message to publish.
type BusPublish struct {
	Subject string `json:"subject"`
	Data    string `json:"data"`
}

// BusMessage is a message seen by a subscriber. Data is the payload as
// text when it is valid UTF-8; otherwise it is base64 and Base64 is set.
type BusMessage struct {
	Subject string    `json:"subject"`
	Reply   string    `json:"reply,omitempty"`
	Data    string    `json:"data"`
	Base64  bool      `json:"base64,omitempty"`
	Time    time.Time `json:"time"`
	// Dropped counts the messages lost just before this one because the
	// subscriber did not keep up.
	Dropped uint64 `json:"dropped,omitempty"`
}

// SendRequest sends Data to one instance of an app (pm2's
// sendDataToProcessId). With no Instance, the target names it ("web:2"),
// or the app has only one.
type SendRequest struct {
	Target   string          `json:"target"`
	Instance *int            `json:"instance,omitempty"`
	Data     json.RawMessage `json:"data"`
}

// SendResult says how the message went: to the subscribers of the
// instance's InboxSubject when it has any, otherwise on its Node.js IPC
// channel.
type SendResult struct {
	App         string `json:"app"`
	Instance    int    `json:"instance"`
	PID         int    `json:"pid,omitempty"`
	IPC         bool   `json:"ipc"`
	Subscribers int    `json:"subscribers"`
}

// TriggerRequest asks every running instance of an app to run an action.
type TriggerRequest struct {
	Target  string   `json:"target"`
	Action  string   `json:"action"`
	Params  string   `json:"params,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Outcomes of a trigger, per instance.
const (
	TriggerOK         = "ok"         // it answered
	TriggerNoHandler  = "no handler" // nothing of it listens for the action
	TriggerTimeout    = "timeout"    // it listens but did not answer in time
	TriggerNotRunning = "not running"
	TriggerFailed     = "failed" // the request could not be sent (Reply says why)
)

// TriggerReply is one instance's answer to a trigger.
type TriggerReply struct {
	Instance int    `json:"instance"`
	PID      int    `json:"pid,omitempty"`
	Outcome  string `json:"outcome"`
	Reply    string `json:"reply,omitempty"`
	// Unsure marks an answer over pm2's IPC protocol, which names no
	// request, that may belong to an earlier trigger that gave up.
	Unsure bool `json:"unsure,omitempty"`
}

// TriggerResult holds every instance's answer, in slot order.
type TriggerResult struct {
	App     string         `json:"app"`
	Action  string         `json:"action"`
	Replies []TriggerReply `json:"replies"`
}
