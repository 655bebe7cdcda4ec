package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/importer"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// version is the CLI's own; a test keeps it equal to engine.Version (imported there only,
// so that the CLI binary does not carry the server's storage engine).
var version = "0.1.0"

// app holds the global flags, shared by every command.
type app struct {
	host    string
	port    int
	ssl     bool
	sslCA   string
	sslCert string
	sslKey  string
	timeout time.Duration
	json    bool
}

const rootHelp = `spur talks to a Spur or gearmand job server over its Gearman port: it shows the
server's state, acts on it, submits jobs and runs any command as a worker. Spur's own
commands (schedules, dead, result, pause, limit, drain, ...) answer against gearmand with a
message saying it lacks them.

Exit codes:
  0  ok
  1  the server answered an error (an ERR line, a refused packet; for submit a failed job;
     for result: no result; for import: a row not moved, or the import stopped)
  2  usage: unknown command, bad flag or argument
  3  cannot connect, the connection broke, or the server did not answer within --timeout`

// newRoot builds the command tree.
func newRoot(in io.Reader, out, errOut io.Writer) *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "spur",
		Short:         "the command-line tool of the Spur job server",
		Long:          rootHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	f := root.PersistentFlags()
	// -h is the host, as in gearadmin; help keeps --help only.
	f.Bool("help", false, "help for a command")
	f.StringVarP(&a.host, "host", "h", "localhost", "server host")
	f.IntVarP(&a.port, "port", "p", 4730, "server port")
	f.BoolVar(&a.ssl, "ssl", false, "connect with TLS")
	f.StringVar(&a.sslCA, "ssl-ca-file", "", "CA certificates to verify the server with, PEM")
	f.StringVar(&a.sslCert, "ssl-certificate", "", "client certificate, PEM (for servers that ask for one)")
	f.StringVar(&a.sslKey, "ssl-key", "", "the client certificate's private key, PEM")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "limit on connecting and on each wait for the server's answer (0: none)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		a.statusCmd(), a.workersCmd(), a.jobsCmd(), a.resultCmd(),
		a.pauseCmd(true), a.pauseCmd(false), a.limitCmd(), a.drainCmd(), a.cancelCmd(), a.versionCmd(),
		a.schedulesCmd(), a.deadCmd(), a.submitCmd(), a.workCmd(), a.topCmd(),
		importer.Command(),
	)
	return root
}

// run executes the command line and returns the exit code.
func run(args []string, in io.Reader, out, errOut io.Writer) int {
	root := newRoot(in, out, errOut)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	code := exitCode(err)
	fmt.Fprintln(errOut, "spur:", message(err))
	if code == exitUsage {
		fmt.Fprintln(errOut, "Run 'spur --help' for usage.")
	}
	return code
}

func (a *app) addr() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// dial connects with the global flags.
func (a *app) dial() (*client.Client, error) {
	return client.Dial(a.addr(), client.Options{
		TLS: a.ssl, CAFile: a.sslCA, CertFile: a.sslCert, KeyFile: a.sslKey, Timeout: a.timeout,
	})
}

// admin sends one admin line on a fresh connection.
func (a *app) admin(line string) ([]string, error) {
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return adminOn(c, line)
}

// adminOn sends one admin line, turning gearmand's "unknown command" into a message that
// says so.
func adminOn(c *client.Client, line string) ([]string, error) {
	lines, err := c.Admin(line)
	if se, ok := err.(*client.ServerError); ok && se.UnknownCommand() {
		return nil, unsupported{line: line, err: se}
	}
	return lines, err
}
