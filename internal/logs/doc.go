// Package logs carries an app's output from its pipes to files and to
// live followers.
//
// The daemon gives each instance a pipe for stdout and one for stderr and
// runs one Stream.Copy loop per pipe. Copy frames the bytes into whole
// lines (a read boundary never splits a line), formats them (plain, with a
// timestamp prefix, or as pm2's JSON objects), writes them to rotating
// Files, and publishes them to a Hub for `tend logs --follow`.
//
// The design answers what pm2's users complain about in its logs: rotation
// with a size cap and retention is built in, so an app cannot fill a disk;
// timestamps are put on lines, not on read chunks, so `time` mode never
// cuts a line in two; every write holds whole lines only, so several
// streams can share one file without mixing halves of lines; and a slow
// follower skips ahead instead of slowing the app or growing the daemon.
//
// The plain path is built for throughput: one read of up to 64 KiB becomes
// one write of all the complete lines in it, with no work per line and no
// allocation.
package logs
