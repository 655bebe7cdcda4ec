//go:build race

package codec_test

// raceEnabled: the race detector instruments memory accesses and may allocate, so the
// zero-allocation assertions are skipped under -race.
const raceEnabled = true
