package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/wal"
)

// applyFunctionsFile applies the function settings of --functions FILE at start, after the
// job log is recovered, so that the file wins over what admin commands changed before the
// restart. One setting per line, the admin command's words; blank lines and lines starting
// with # are skipped:
//
//	retry FN ATTEMPTS BASE MAX   failed background jobs run again (BASE, MAX: 0.5 or 500ms)
//	limit FN N                   at most N of FN's jobs run at once (0: no limit)
//	pause FN                     FN's jobs queue but are not handed out
//
// A line that does not parse stops spurd from starting, with the file and line named.
func applyFunctionsFile(e *engine.Engine, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--functions: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		words := strings.Fields(sc.Text())
		if len(words) == 0 || strings.HasPrefix(words[0], "#") {
			continue
		}
		change, err := functionSetting(words)
		if err == nil {
			done := make(chan error, 1)
			e.UpdateFunction([]byte(words[1]), change, func(err error) { done <- err })
			err = <-done
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--functions %s: %w", path, err)
	}
	return nil
}

// functionSetting parses one line of the --functions file.
func functionSetting(words []string) (func(*wal.FunctionSettings), error) {
	cmd := strings.ToLower(words[0])
	switch {
	case cmd == "retry" && len(words) >= 3:
		p, err := engine.ParseRetryPolicy(words[2:])
		if err != nil {
			return nil, fmt.Errorf("retry: %w", err)
		}
		return func(st *wal.FunctionSettings) { st.Retry = wal.RetryPolicy(p) }, nil
	case cmd == "limit" && len(words) == 3:
		n, err := strconv.Atoi(words[2])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("limit %q: want a number, 0 for none", words[2])
		}
		return func(st *wal.FunctionSettings) { st.Limit = n }, nil
	case cmd == "pause" && len(words) == 2:
		return func(st *wal.FunctionSettings) { st.Paused = true }, nil
	}
	return nil, errors.New("want `retry FN ATTEMPTS BASE MAX`, `limit FN N` or `pause FN`")
}
