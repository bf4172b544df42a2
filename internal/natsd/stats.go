package natsd

import "time"

// Stats is a snapshot of the server's figures.
type Stats struct {
	Conns         int    // clients connected now
	TotalConns    uint64 // clients accepted since Start
	Subs          int    // local subscriptions: clients' and in-process
	InMsgs        uint64 // messages published (clients, in-process, hubs)
	InBytes       uint64
	OutMsgs       uint64 // messages delivered (to clients, in-process, hubs)
	OutBytes      uint64
	SlowConsumers uint64 // clients cut off for not reading
	Dropped       uint64 // messages in-process subscriptions dropped
	Leafs         []LeafStats
}

// LeafStats is the state of the link to one hub.
type LeafStats struct {
	URL            string    // of the current or last attempt; the password replaced
	Connected      bool      // interest is being exchanged
	LastError      string    // why the last link ended or attempt failed
	Since          time.Time // when Connected last changed; zero before the first link
	RemoteInterest int       // interest entries the hub announced
}

// Stats returns the server's figures now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Conns: len(s.conns), Subs: s.localSubs}
	remotes := s.remotes
	s.mu.Unlock()
	st.TotalConns = s.stats.totalConns.Load()
	st.InMsgs = s.stats.inMsgs.Load()
	st.InBytes = s.stats.inBytes.Load()
	st.OutMsgs = s.stats.outMsgs.Load()
	st.OutBytes = s.stats.outBytes.Load()
	st.SlowConsumers = s.stats.slowConsumers.Load()
	st.Dropped = s.stats.dropped.Load()
	for _, r := range remotes {
		r.mu.Lock()
		ls := LeafStats{URL: r.url, Connected: r.connected, LastError: r.lastErr, Since: r.since}
		if ls.URL == "" {
			ls.URL = r.urls[0].redacted
		}
		c := r.cur
		r.mu.Unlock()
		if c != nil {
			c.mu.Lock()
			ls.RemoteInterest = len(c.subs)
			c.mu.Unlock()
		}
		st.Leafs = append(st.Leafs, ls)
	}
	return st
}
