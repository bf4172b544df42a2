package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       Config
		err        string // substring of the error; empty: no error
	}{
		{name: "missing file", file: "-"},
		{name: "empty", file: "\n"},
		{name: "leaf nodes", file: "bus:\n  leafnodes:\n    - nats://u:p@hub.example:7422\n    - nats-leaf://10.0.0.2:7422\n  port: 4223\n  host: 0.0.0.0\n",
			want: Config{Bus: BusConfig{Leafnodes: []string{"nats://u:p@hub.example:7422", "nats-leaf://10.0.0.2:7422"}, Port: 4223, Host: "0.0.0.0"}}},
		{name: "unknown field", file: "bus:\n  leafnode: [x]\n", err: `config.yaml:2:3: unknown field "leafnode" (did you mean "leafnodes"?)`},
		{name: "a key in the wrong section", file: "metrics:\n  port: 9464\n", err: `unknown field "port" (the file has two sections: bus, with host, port and leafnodes; metrics, with addr)`},
		{name: "nothing close", file: "colour: blue\n", err: `unknown field "colour"`},
		{name: "wrong type", file: "bus:\n  port: many\n", err: "config.yaml:2:9: "},
		{name: "syntax", file: "bus: [\n", err: "config.yaml:1:"},
		{name: "tls", file: "bus:\n  leafnodes: [\"tls://u:secret@hub:7422\"]\n", err: "plain TCP only"},
		{name: "password kept out of messages", file: "bus:\n  leafnodes: [\"http://u:secret@hub:7422\"]\n", err: "u:xxx@hub"},
		{name: "a password that breaks the URL is not shown", file: "bus:\n  leafnodes: [\"nats://leaf:s3#secret@hub:7422\"]\n", err: "entry 1: not a valid URL"},
		{name: "no port", file: "bus:\n  leafnodes: [\"nats://hub\"]\n", err: "give a host and a port"},
		{name: "not a host name", file: "bus:\n  leafnodes: [\"nats://u:secret@hub!x:7422\"]\n", err: "the host must be an IP address or a host name"},
		{name: "IPv6 zone", file: "bus:\n  leafnodes: [\"nats://[fe80::1%25eth0]:7422\"]\n", err: "zone"},
		{name: "addresses", file: "bus:\n  leafnodes: [\"nats://[fd00::1]:7422\", \"nats://hub.internal.:7422\"]\n",
			want: Config{Bus: BusConfig{Leafnodes: []string{"nats://[fd00::1]:7422", "nats://hub.internal.:7422"}}}},
		{name: "bad host", file: "bus:\n  host: localhost\n", err: "give an IP address"},
		{name: "bad port", file: "bus:\n  port: 70000\n", err: "out of range"},
		{name: "metrics address", file: "metrics:\n  addr: 9464\n", want: Config{Metrics: MetricsConfig{Addr: "9464"}}},
		{name: "bad metrics address", file: "metrics:\n  addr: /tmp/m.sock\n", err: `metrics: metrics address "/tmp/m.sock": give a TCP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if tc.file != "-" {
				if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadConfig(home)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v; want one containing %q", err, tc.err)
			case tc.err != "" && strings.Contains(err.Error(), "secret"):
				t.Fatalf("the error shows the password: %v", err)
			case tc.err == "":
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("config (-want +got):\n%s", d)
				}
			}
		})
	}
}
