// Package faultstore wraps a store.Store and injects the failures object
// stores really produce, so the commit path, snapshot loading and ingest can
// be tested against them with a real store underneath:
//
//   - transient errors on reads (Get, Open, Stat, ReaderAt.ReadAt), lists
//     (at the start or part-way through a listing) and writes (Put,
//     PutIfAbsent, Delete; PutStream at the start or part-way through the
//     stream, which the inner store then aborts), each with its own
//     probability;
//   - the lost response: Put, PutStream or PutIfAbsent succeeds on the inner
//     store but the caller gets an error, as when a connection drops after
//     the server committed the write. A PutIfAbsent retry then sees
//     ErrPreconditionFailed for its own object;
//   - latency (uniform in [0, MaxLatency]) with a probability, honouring the
//     context.
//
// Every injected error wraps ErrInjected, which wraps store.ErrTransient, so
// store.IsRetryable reports true for it. Faults are drawn from a seeded
// generator (reproducible when calls are sequential), can be forced with
// FailNext, switched off with SetEnabled, and are counted (Counts).
package faultstore
