// Package sourcetest gives tests the servers behind event sources: a
// fresh PostgreSQL database per test process, Redis, and in-process NATS
// servers, plus clients of a test's own to publish from outside the
// gateway. PostgreSQL and Redis are the ones on this machine (as
// scripts/test starts them); a test that needs one skips when it is down,
// and fails when the CI environment variable is set (CI must run every
// test).
//
// A package whose tests call PGURL drops the database when they end:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { sourcetest.DropDB() }))
//	}
package sourcetest
