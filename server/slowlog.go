package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/rapporteur/rapporteur/server/store"
)

// slowLogEvery is how often, at most, the server logs slow room
// transactions.
const slowLogEvery = time.Minute

// watchSlowBatches logs, every interval and once more when ctx ends, the
// room transactions and op waits over store.SlowBatch since the last
// time: the operator's sign, during an event, that the tablets' acks wait
// for the database (most often for its disk) rather than for this server.
func watchSlowBatches(ctx context.Context, st *store.Store, logger *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			logSlowBatches(logger, st.TakeSlowBatches(), every)
			return
		case <-t.C:
			logSlowBatches(logger, st.TakeSlowBatches(), every)
		}
	}
}

// logSlowBatches logs sb as one warning, if anything was slow.
func logSlowBatches(logger *slog.Logger, sb store.SlowBatches, every time.Duration) {
	if sb.Count == 0 && sb.Ops == 0 {
		return
	}
	logger.Warn("slow room transactions: ops waited for the database",
		"over", store.SlowBatch, "within", every, "transactions", sb.Count,
		"longest", sb.Longest.Round(time.Millisecond), "room", sb.Room,
		"ops_waiting", sb.Ops, "longest_wait", sb.MaxWait.Round(time.Millisecond),
		"hint", "most often a slow or stalling disk under Postgres: `rapporteur loadtest -scenario disk -dir <a folder on Postgres's disk>` times it")
}
