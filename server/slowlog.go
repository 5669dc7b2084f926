package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/rapporteur/rapporteur/server/store"
)

// slowLogEvery is how often the server logs its slow room transactions.
const slowLogEvery = time.Minute

// watchSlowBatches logs, every interval until ctx ends, the room
// transactions that took over store.SlowBatch since the last time: the
// operator's sign, during an event, that the tablets' acks wait for the
// database (most often for its disk) rather than for this server.
func watchSlowBatches(ctx context.Context, st *store.Store, logger *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sb := st.TakeSlowBatches()
			if sb.Count == 0 {
				continue
			}
			logger.Warn("slow commits: ops waited for their room's transaction",
				"over", store.SlowBatch, "transactions", sb.Count, "ops", sb.Ops,
				"longest", sb.Longest.Round(time.Millisecond), "room", sb.Room, "within", every,
				"hint", "most often a slow or stalling disk under Postgres: `rapporteur loadtest -scenario disk -dir <its data folder>` times it")
		}
	}
}
