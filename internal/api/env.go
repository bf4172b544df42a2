package api

import (
	"slices"
	"strconv"
)

// InstanceEnv builds the environment of the process in slot. Layers, each
// over the one before (documented in docs/config.md, "Environment"):
//  1. BaseEnv: the CLI's environment when the app was started (after
//     filter_env), or when it was last restarted with --update-env;
//  2. PORT from the port field;
//  3. Env: the config's env, with env_<name> over it;
//  4. increment_var, raised by the slot number;
//  5. tend's own variables: TEND_APP, TEND_INSTANCE, the instance_var
//     (NODE_APP_INSTANCE by default) and TEND_HOME, so a `tend` command
//     run by the app talks to the daemon that runs it;
//  6. extra: what the daemon gives this one process (LISTEN_FDS,
//     NOTIFY_SOCKET, the private PORT of proxy mode).
func InstanceEnv(spec *AppSpec, slot int, home string, extra map[string]string) []string {
	env := make(map[string]string, len(spec.BaseEnv)+len(spec.Env)+4)
	for k, v := range spec.BaseEnv {
		env[k] = v
	}
	if spec.Port > 0 {
		env["PORT"] = strconv.Itoa(spec.Port)
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	if spec.IncrementVar != "" {
		if n, err := strconv.Atoi(env[spec.IncrementVar]); err == nil {
			env[spec.IncrementVar] = strconv.Itoa(n + slot)
		}
	}
	env["TEND_APP"] = spec.Name
	env["TEND_INSTANCE"] = strconv.Itoa(slot)
	if spec.InstanceVar != "" {
		env[spec.InstanceVar] = strconv.Itoa(slot)
	}
	if home != "" {
		env["TEND_HOME"] = home
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
