// Package natsd is tend's embedded pub/sub bus: a small server that
// speaks the NATS client protocol, so stock NATS clients in any language
// connect to it, and that can link to remote NATS servers as a leaf node.
//
// It exists instead of linking nats-server as a library, which made
// every tend command 1.7 ms slower, the daemon 6 MB larger in memory and
// the binary three times the size; and it runs on raw descriptors
// (internal/rawnet) because tend must not import package net (see
// docs/layout.md).
//
// What it speaks, as nats-server does:
//
//   - Client protocol: INFO, CONNECT (verbose, echo, headers,
//     no_responders; user and password, or the password as auth_token,
//     compared in constant time), PING/PONG, PUB, HPUB, SUB with queue
//     groups, UNSUB with a maximum, MSG and HMSG, +OK and -ERR with
//     nats-server's texts. Nothing but CONNECT is taken before it
//     authenticates, within AuthTimeout.
//   - Subjects with '*' and '>' wildcards; each queue group gets a
//     message once, plain subscribers each get it; headers are stripped
//     for clients that did not declare them; a request nothing takes is
//     answered with a 503 status when the client asked for
//     no_responders.
//   - Flow control: every connection has its own writer and an outbound
//     buffer; a client that does not read is cut off as a slow consumer
//     once MaxPending bytes wait for it, and publishers never block.
//   - Leaf node, soliciting side only: natsd connects to hubs
//     (Options.Leafs), sends LS+/LS- for local interest (queue groups
//     with their member count as weight), forwards local messages to a
//     hub that has interest (LMSG, HMSG with headers, with the queue
//     groups it is to serve), delivers the hub's messages locally,
//     answers pings, detects loops with a $LDS subject, and reconnects
//     with backoff.
//   - In process: Publish, Subscribe and Request for the daemon itself,
//     routed like a client's messages; Interest and Stats.
//
// What it does not: JetStream, routes and clustering, gateways,
// accepting leaf connections, TLS (a leaf link across machines must run
// over a private network or a tunnel: TLS would bring in package net),
// accounts beyond the one, permissions, nkeys and JWTs, websocket and
// MQTT, compression, the monitoring endpoints, lame duck mode, and INFO
// updates (connect_urls). A hub named by host name is looked up at each
// attempt to connect (internal/resolve: the hosts file, then DNS), and
// its addresses tried in turn. Messages from one hub are not
// forwarded to another, nor is one hub's interest announced to another:
// each hub sees only this server's own subscribers.
package natsd
