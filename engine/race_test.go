//go:build race

package engine

// raceEnabled: the race detector instruments memory accesses and may allocate, so the
// zero-allocation assertions are skipped under -race.
const raceEnabled = true
