package loadgen

import (
	"context"

	"github.com/tend-pm/tend/internal/rawnet"
)

// Dial returns a DialFunc that connects to a: raw sockets (no package net,
// see internal/rawnet), so tend itself can run the load.
func Dial(a rawnet.Addr) DialFunc {
	return func(ctx context.Context) (Conn, error) {
		f, err := rawnet.Dial(ctx, a)
		if err != nil {
			return nil, err // not a nil *os.File in a non-nil Conn
		}
		return f, nil
	}
}

// DialTCP is Dial for an address written as rawnet.ParseAddr reads it
// ("127.0.0.1:3000", "[::1]:3000", "localhost:3000"; ":3000" is
// 127.0.0.1). It resolves no names.
func DialTCP(addr string) (DialFunc, error) {
	a, err := rawnet.ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	return Dial(a.Loopback()), nil
}
