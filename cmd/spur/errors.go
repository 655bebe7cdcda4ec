package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/cmd/spur/importer"
)

// Exit codes, documented in rootHelp.
const (
	exitOK          = 0
	exitServer      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// usageError is a command line spur cannot act on.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// failure is a refusal spur reports with exit code 1 that is not an ERR line: a failed job,
// a result that does not exist.
type failure struct{ msg string }

func (e failure) Error() string { return e.msg }

// unsupported is an admin command the server does not have (gearmand, for Spur's own).
type unsupported struct {
	line string
	err  *client.ServerError
}

func (e unsupported) Error() string {
	cmd := strings.Join(strings.Fields(e.line)[:min(2, len(strings.Fields(e.line)))], " ")
	return fmt.Sprintf("the server does not have the command %q (%s): gearmand lacks Spur's own admin commands", cmd, e.err.Code)
}

func (e unsupported) Unwrap() error { return e.err }

func exitCode(err error) int {
	var (
		ue usageError
		ce *client.ConnError
		se *client.ServerError
		fe failure
		ie importer.Failed
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ce):
		return exitUnreachable
	case errors.As(err, &se), errors.As(err, &fe), errors.As(err, &ie):
		return exitServer
	}
	// What cobra itself refuses (an unknown command, a wrong argument count) is not typed:
	// every error of spur's own is one of the above.
	return exitUsage
}

func message(err error) string {
	var ce *client.ConnError
	var se *client.ServerError
	switch {
	case errors.As(err, &ce) && ce.Timeout():
		return err.Error() + " (no answer within --timeout)"
	case errors.As(err, &se) && !isUnsupported(err):
		return "the server answered " + se.Error()
	}
	return err.Error()
}

// args wraps a cobra argument check so that its refusal is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
