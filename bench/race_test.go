//go:build race

package main

// raceEnabled: the race detector allocates, so the zero-allocation test is skipped under -race.
const raceEnabled = true
