package link

// A link may know several relays that serve the same mailboxes: the nodes
// of a relayd cluster, where every node holds every mailbox, seq and
// receipt. The link sticks to the relay that works and, when it fails,
// tries the next one of the list. Nothing else changes between relays:
// the hello resumes from the inbox's seq, and the outbox resends with the
// same refs, which the cluster deduplicates as one relay would.

// failover is called after an attempt that ended (misses counts those in
// a row that never reached a welcome; 0 after a connection that did). It
// moves to the next relay of the list after a miss, and says whether to
// try it at once: while some relay of the list has not failed in this
// round, there is no reason to wait; once all have, the caller backs off
// as it does for a single relay. After a lost connection the same relay
// is tried first (after the backoff): a restart or a network blip is more
// common than a node gone for good, and a refused dial moves on at once.
func (l *Link) failover(misses int) (now bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.cfg.URLs)
	if misses == 0 || n == 1 {
		return false
	}
	l.cur = (l.cur + 1) % n
	return misses%n != 0
}
