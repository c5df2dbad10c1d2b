// Package storetest is the conformance suite every store.Store must pass:
// reads, writes, ranges, listing order and startAfter, deletes, error
// sentinels, the put-if-absent race (exactly one winner among concurrent
// writers, the winner's bytes intact, no temporary files left visible), and
// PutStream (invisible while streaming, whole after, nothing published and
// no temporary file left when the writer fails or the context ends, a 64 MiB
// object streamed in 1 MiB chunks).
//
// Use it from a backend's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newEmptyStore(t) })
//	}
//
// The factory must return an empty store each time it is called.
package storetest
