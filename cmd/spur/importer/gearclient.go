package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// serverTarget submits the rows to a running spurd over the Gearman protocol, as background
// jobs of their priority (SUBMIT_JOB_HIGH_BG, _BG, _LOW_BG) or, with a run-at time, as
// SUBMIT_JOB_EPOCH, each with its unique. A row counts as imported once its JOB_CREATED
// arrives: spurd sends it only after the job's record is durable.
//
// A batch is written whole while its replies are read; spurd answers the requests of one
// connection in their order (it holds a reply's place until the job is durable), so the
// n-th reply is the n-th row's. An ERROR reply refuses that row only; a lost connection
// fails the batch, whose rows stay in the source (a row of it that spurd did take is then
// submitted again by the next run, see the package doc).
type serverTarget struct {
	addr    string
	conn    net.Conn
	timeout time.Duration
	out     []byte
	in      []byte
}

func dialServer(ctx context.Context, addr string, timeout time.Duration) (*serverTarget, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--to %s: %w", addr, err)
	}
	return &serverTarget{addr: addr, conn: c, timeout: timeout}, nil
}

func (t *serverTarget) Describe() string { return "spurd at " + t.addr }

func submitType(r *Row) codec.Type {
	switch {
	case r.When != 0:
		return codec.SubmitJobEpoch
	case r.Priority == prioHigh:
		return codec.SubmitJobHighBg
	case r.Priority == prioLow:
		return codec.SubmitJobLowBg
	}
	return codec.SubmitJobBg
}

func (t *serverTarget) Import(ctx context.Context, rows []Row) ([]outcome, error) {
	t.out = t.out[:0]
	var epoch [20]byte
	for i := range rows {
		r := &rows[i]
		if typ := submitType(r); typ == codec.SubmitJobEpoch {
			t.out = codec.AppendRequest(t.out, typ, []byte(r.Function), []byte(r.Unique),
				strconv.AppendInt(epoch[:0], r.When, 10), r.Data)
		} else {
			t.out = codec.AppendRequest(t.out, typ, []byte(r.Function), []byte(r.Unique), r.Data)
		}
	}
	deadline := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = t.conn.SetDeadline(deadline)
	// Write and read at once: a batch larger than the socket buffers must not wait for a
	// server that waits for us to read its replies.
	werr := make(chan error, 1)
	go func() {
		_, err := t.conn.Write(t.out)
		werr <- err
	}()
	res := make([]outcome, len(rows))
	n := 0
	var rerr error
	for n < len(rows) && rerr == nil {
		pkt, used, err := codec.Parse(t.in, 0)
		switch {
		case err != nil:
			rerr = fmt.Errorf("%s: unreadable reply: %w", t.Describe(), err)
		case used == 0:
			if len(t.in) == cap(t.in) {
				t.in = append(t.in, make([]byte, max(4096, len(t.in)))...)[:len(t.in)]
			}
			m, err := t.conn.Read(t.in[len(t.in):cap(t.in)])
			t.in = t.in[:len(t.in)+m]
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("connection closed by the server")
				}
				rerr = fmt.Errorf("%s: %w", t.Describe(), err)
			}
		case pkt.Text || !pkt.Response:
			rerr = fmt.Errorf("%s: not a Gearman server's reply", t.Describe())
		default:
			switch pkt.Type {
			case codec.JobCreated:
				res[n] = outcome{kind: imported}
				n++
			case codec.Error:
				res[n] = outcome{kind: refused, reason: fmt.Sprintf("refused by spurd: %s %s", pkt.Arg(0), pkt.Arg(1))}
				n++
			case codec.Noop:
			default:
				rerr = fmt.Errorf("%s: unexpected %s to a submit", t.Describe(), pkt.Type)
			}
			t.in = t.in[:copy(t.in, t.in[used:])]
		}
	}
	if err := <-werr; err != nil && rerr == nil {
		rerr = fmt.Errorf("%s: %w", t.Describe(), err)
	}
	if rerr != nil {
		return nil, rerr
	}
	return res, nil
}

func (t *serverTarget) Close() error { return t.conn.Close() }
