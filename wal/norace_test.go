//go:build !race

package wal

// raceEnabled: the race detector changes what the heap holds (TestRecoveryKeepsNoResultInMemory
// measures it only without it; make test runs it a second time so).
const raceEnabled = false
