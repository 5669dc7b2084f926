package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/domain"
)

// TestLookupsOnAFreshProcessDoNotStall: resends refused for a lost role,
// arriving together on a process that has not yet prepared the room lock's
// statement, all answer at once. Before, each look-up opened a transaction
// (a pool connection) and then prepared the statement, which takes another
// connection: with the pool's 40 connections held by look-ups, the prepare
// waited until its context ended, and the process's database work with it
// (found by a review). Whether the look-ups all hold a connection before
// the first prepare depends on scheduling: each attempt is a fresh store.
func TestLookupsOnAFreshProcessDoNotStall(t *testing.T) {
	for attempt := range 8 {
		stalled := false
		t.Run(fmt.Sprint(attempt+1), func(t *testing.T) { stalled = lookupsStall(t) }) // its store closed after it
		if stalled {
			t.Fatalf("stalled at attempt %d", attempt+1)
		}
	}
}

func lookupsStall(t *testing.T) bool {
	s, ws := MustDemoWorkshops(t)
	room := fmt.Sprintf("workshop:%d", ws[0].ID)
	const n = 40
	var wg sync.WaitGroup
	start := make(chan struct{})
	took := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			<-start
			t0 := time.Now()
			_, errs[i] = s.OpSeqSettled(ctx, room, fmt.Sprintf("never-%d", i))
			took[i] = time.Since(t0)
		}()
	}
	close(start)
	wg.Wait()
	var worst time.Duration
	other := 0
	for i := range n {
		worst = max(worst, took[i])
		if errs[i] != nil && !isNotFound(errs[i]) {
			other++
			if other == 1 {
				t.Logf("lookup %d: %v after %v", i, errs[i], took[i])
			}
		}
	}
	if worst > 2*time.Second || other > 0 {
		t.Errorf("%d lookups at once: the slowest took %v, %d failed other than not found", n, worst, other)
		return true
	}
	return false
}

func isNotFound(err error) bool { return domain.ErrorCode(err) == domain.NotFound }
