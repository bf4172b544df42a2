// Package api is the vocabulary the tend CLI and the tend daemon share: the
// wire types of the /v1 control API, the app specification that the daemon
// persists, the status names, and the error envelope.
//
// JSON tags are part of the contract: the CLI, `curl --unix-socket`, the
// terminal monitor and the dashboard all read these shapes.
package api

import (
	"time"
)

// Instance statuses, with pm2's names so that scripts written against
// `pm2 jlist` keep their meaning.
const (
	StatusLaunching      = "launching"
	StatusOnline         = "online"
	StatusStopping       = "stopping"
	StatusStopped        = "stopped"
	StatusWaitingRestart = "waiting restart"
	StatusErrored        = "errored"
)

// Header names exchanged on every request and response.
const (
	// HeaderVersion carries the sender's tend version, so that a CLI and a
	// daemon built from different sources notice it on the first call.
	HeaderVersion = "Tend-Version"
)

// Routes of the control API, all under /v1.
const (
	PathPing      = "/v1/ping"
	PathApps      = "/v1/apps"     // GET: list; POST: create and start apps from specs
	PathApp       = "/v1/apps/"    // GET /v1/apps/{target}: describe
	PathAction    = "/v1/actions/" // POST /v1/actions/{start|stop|restart|delete|reset|signal|flush}
	PathLogs      = "/v1/logs"     // GET: tail and follow, NDJSON
	PathLogReopen = "/v1/logs/reopen"
	PathSave      = "/v1/save"
	PathResurrect = "/v1/resurrect"
	PathKill      = "/v1/kill"
	// PathNotify takes sd_notify messages (READY=1) from instances.
	PathNotify = "/v1/notify"
	// PathMonitor is what `tend monit` polls: the apps with their latest
	// figures, the host, and the history of one app (see Monitor).
	PathMonitor = "/v1/monitor"
	// PathMetrics serves the figures in Prometheus' text format (outside
	// /v1, where scrapers look for it).
	PathMetrics = "/metrics"
)

// Actions accepted under PathAction.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionDelete  = "delete"
	ActionReset   = "reset"
	ActionSignal  = "signal"
	ActionFlush   = "flush"
	// ActionReload replaces every instance without downtime (see
	// docs/cluster.md); ActionScale changes the number of instances.
	ActionReload = "reload"
	ActionScale  = "scale"
)

// Ping is the answer to GET /v1/ping.
type Ping struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Home    string    `json:"home"`
	Started time.Time `json:"started"`
}

// AppInfo describes one app and its instances, as `tend ls` and
// `tend describe` show it.
type AppInfo struct {
	ID        int            `json:"id"`
	Name      string         `json:"name"`
	Namespace string         `json:"namespace,omitempty"`
	Status    string         `json:"status"`
	Created   time.Time      `json:"created"`
	Instances []InstanceInfo `json:"instances"`
	// Listen and Balance are the app's held addresses and balancing mode
	// (cluster mode), if it has a port.
	Listen  []string `json:"listen,omitempty"`
	Balance string   `json:"balance,omitempty"`
	// MaxMemory is max_memory_restart, the limit on each instance's tree.
	MaxMemory ByteSize `json:"max_memory_restart,omitempty"`
	// Listeners are the app's held sockets and their accept queues.
	Listeners []ListenerInfo `json:"listeners,omitempty"`
}

// ListenerInfo is one listening socket the daemon holds for an app.
type ListenerInfo struct {
	Addr string `json:"addr"`
	// Slot is the instance whose socket it is (reuseport), or -1 for a
	// socket every instance shares (shared, proxy).
	Slot int `json:"slot"`
	// Queue counts the connections waiting to be accepted, and Backlog is
	// the queue's limit; both are known for TCP sockets on Linux only.
	Queue   int `json:"queue"`
	Backlog int `json:"backlog,omitempty"`
}

// AppDetail is an app as `tend describe` shows it: its listing, its spec
// and its log files. It is a type of its own because the spec holds the
// environment, which a plain listing should not spread around, and
// because decoding a spec costs a listing time it does not need.
type AppDetail struct {
	AppInfo
	Spec AppSpec  `json:"spec"`
	Logs LogPaths `json:"logs"`
}

// LogPaths are the files an app's output is written to. An empty path means
// that stream is not written to a file.
type LogPaths struct {
	Out      []string `json:"out,omitempty"`
	Err      []string `json:"err,omitempty"`
	Combined []string `json:"combined,omitempty"`
}

// InstanceInfo is one slot of an app: the process that runs in it now and
// the history that explains its status.
type InstanceInfo struct {
	Slot     int    `json:"slot"`
	PID      int    `json:"pid,omitempty"`
	Status   string `json:"status"`
	Restarts int    `json:"restarts"`
	// Unstable counts the restarts that followed a run shorter than
	// min_uptime inside the current window; max_restarts of them make the
	// instance errored.
	Unstable int       `json:"unstable_restarts"`
	Started  time.Time `json:"started,omitzero"`
	// CPU is the share of one core used by the instance's whole process
	// tree since the previous sample, in percent.
	CPU float64 `json:"cpu"`
	// Memory is the resident memory of the instance's whole process tree.
	Memory uint64 `json:"memory"`
	// LastExit is how the previous process in this slot ended.
	LastExit *ExitInfo `json:"last_exit,omitempty"`
	// NextRestart is when a waiting restart is due; absent when none is.
	NextRestart time.Time `json:"next_restart,omitzero"`
	// Reason says in words why the instance is in its status.
	Reason string `json:"reason,omitempty"`
	// Ready tells whether the instance said it is ready (or passed its
	// probe, or stayed up for listen_timeout when it gives no signal);
	// only ready instances get connections in proxy mode, and a reload
	// waits for it.
	Ready bool `json:"ready"`
	// AppStatus is the last STATUS= the instance sent on NOTIFY_SOCKET.
	AppStatus string `json:"app_status,omitempty"`
	// Port is the instance's private port in proxy mode.
	Port int `json:"port,omitempty"`
	// Conns counts the connections the proxy has open to the instance.
	Conns int `json:"conns,omitempty"`

	// Figures of the sampler (docs/monitoring.md), for the whole tree.
	// CPUTime is the CPU the tree used since the process started, in
	// seconds; FDs its open descriptors; Threads and Procs its threads and
	// processes. Sampled is when they were read (zero: not yet).
	CPUTime float64   `json:"cpu_seconds,omitempty"`
	FDs     int       `json:"fds,omitempty"`
	Threads int       `json:"threads,omitempty"`
	Procs   int       `json:"procs,omitempty"`
	Sampled time.Time `json:"sampled,omitzero"`
	// Metrics are the numbers the instance reported itself (METRIC= on
	// NOTIFY_SOCKET), sorted by name.
	Metrics []AppMetric `json:"metrics,omitempty"`
	// LastRestart is why the daemon itself last replaced the process of
	// this slot (a memory limit, a watchdog, a readiness timeout).
	LastRestart *RestartInfo `json:"last_restart,omitempty"`
}

// Metric types an instance may report.
const (
	MetricGauge   = "gauge"
	MetricCounter = "counter"
)

// AppMetric is one number an instance reports about itself.
type AppMetric struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"` // MetricGauge or MetricCounter
	Value float64 `json:"value"`
}

// RestartInfo records a restart the daemon decided on its own.
type RestartInfo struct {
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// Monitor answers GET /v1/monitor: the apps with their latest figures,
// the host's, and, if asked for with ?history=<app>&points=N, the last N
// samples of each instance of that app.
type Monitor struct {
	Time time.Time `json:"time"`
	// Interval is the sampler's cadence.
	Interval Duration  `json:"interval"`
	Host     HostInfo  `json:"host"`
	Apps     []AppInfo `json:"apps"`
	History  []History `json:"history,omitempty"`
}

// HostInfo is the machine's load.
type HostInfo struct {
	// CPU is the share of all CPUs in use, in percent of the machine.
	CPU          float64 `json:"cpu"`
	Cores        int     `json:"cores"`
	MemTotal     uint64  `json:"mem_total"`
	MemAvailable uint64  `json:"mem_available"`
}

// History is the recent samples of one slot, oldest first, as parallel
// lists: Time in unix seconds, CPU in percent of one core, Memory in bytes,
// Conns (-1: not known).
type History struct {
	App      string    `json:"app"`
	Instance int       `json:"instance"`
	Time     []int64   `json:"time"`
	CPU      []float32 `json:"cpu"`
	Memory   []uint64  `json:"memory"`
	Conns    []int32   `json:"conns"`
}

// ExitInfo records how a process ended.
type ExitInfo struct {
	Code   int       `json:"code"`             // exit code, or -1 when killed by a signal
	Signal string    `json:"signal,omitempty"` // e.g. "SIGKILL"
	Time   time.Time `json:"time"`
	Uptime Duration  `json:"uptime"`
}

// StartRequest asks the daemon to create apps from specs and start them.
// Either every spec is accepted or none is.
type StartRequest struct {
	Apps []AppSpec `json:"apps"`
}

// ActionRequest names the apps an action applies to and its options.
type ActionRequest struct {
	// Targets are app names, numeric ids, or "all".
	Targets []string `json:"targets"`
	// Signal is the signal name for ActionSignal.
	Signal string `json:"signal,omitempty"`
	// BaseEnv, when UpdateEnv is set, replaces the inherited environment
	// layer of each target (pm2's --update-env).
	UpdateEnv bool              `json:"update_env,omitempty"`
	BaseEnv   map[string]string `json:"base_env,omitempty"`
	// Specs, on restart, replace the specs of the apps with the same names
	// (a restart of a config file applies the file as it is now).
	Specs []AppSpec `json:"specs,omitempty"`
	// Instances is the new count for ActionScale: "4", "+2" or "-1".
	Instances string `json:"instances,omitempty"`
}

// ActionResult is the daemon's answer to an action: the apps it touched,
// in their state after the action.
type ActionResult struct {
	Apps []AppInfo `json:"apps"`
}

// SaveResult answers PathSave.
type SaveResult struct {
	Path string `json:"path"`
	Apps int    `json:"apps"`
}

// LogLine is one line of an app's output, as streamed by GET /v1/logs.
type LogLine struct {
	App string `json:"app"`
	// Instance is the slot that printed the line, or -1 when it is not
	// known (a line read back from a file that several instances share).
	Instance int       `json:"instance"`
	Stream   string    `json:"stream"` // "out" or "err"; "tend" for notes from the daemon
	Time     time.Time `json:"time,omitzero"`
	Line     string    `json:"line"`
}
