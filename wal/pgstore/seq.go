package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// seqBlocks hands out job numbers from blocks of the shared sequence spur_job_seq: each
// nextval reserves `block` numbers (the sequence's INCREMENT BY) for this store alone, so
// numbers are unique across every node and never reused. One spare block is reserved ahead
// of need, by refill, once half of the block in use is gone: NextSeq, which the engine calls
// under a shard lock on an event loop, waits for the database only when a burst used up
// both.
type seqBlocks struct {
	mu     sync.Mutex // a leaf: taken under engine shard locks (locksordering.txt)
	cond   *sync.Cond // signals: spare reserved, or a reservation failed, or closing
	next   uint64     // the next number of the block in use
	end    uint64     // the end of the block in use (exclusive)
	spare  uint64     // the first number of the reserved spare block; 0 = none
	block  uint64
	asking bool  // a reservation is under way
	failed error // the last reservation failed: NextSeq refuses once the numbers run out
	closed bool
	kick   chan struct{}

	// reserve is one nextval, bounded in time.
	reserve func(ctx context.Context) (uint64, error)
}

// ErrNoNumbers refuses a NextSeq when the numbers reserved are used up and no new block
// could be reserved: the database is unreachable.
var ErrNoNumbers = errors.New("pgstore: no job numbers left and none could be reserved")

// reserveTimeout bounds one reservation, and so a NextSeq that waits for one.
const reserveTimeout = 5 * time.Second

func (b *seqBlocks) init(block uint64, first uint64, reserve func(ctx context.Context) (uint64, error)) {
	b.cond = sync.NewCond(&b.mu)
	b.block, b.next, b.end = block, first, first+block
	b.reserve = reserve
	b.kick = make(chan struct{}, 1)
}

// nextSeq issues a number. It returns at once while the block lasts.
func (b *seqBlocks) nextSeq() (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.closed {
			return 0, ErrClosed
		}
		if b.next < b.end {
			seq := b.next
			b.next++
			if b.spare == 0 && b.end-b.next < b.block/2 {
				b.ask()
			}
			return seq, nil
		}
		if b.spare != 0 {
			b.next, b.end, b.spare = b.spare, b.spare+b.block, 0
			b.ask()
			continue
		}
		if b.failed != nil && !b.asking {
			err := b.failed
			b.ask() // the next call may find the database back
			return 0, fmt.Errorf("%w: %w", ErrNoNumbers, err)
		}
		b.ask()
		b.cond.Wait()
		if b.spare == 0 && b.failed != nil && !b.asking {
			return 0, fmt.Errorf("%w: %w", ErrNoNumbers, b.failed)
		}
	}
}

// ask starts a reservation unless one is under way. Call with mu held.
func (b *seqBlocks) ask() {
	if b.asking || b.spare != 0 {
		return
	}
	b.asking = true
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// refillLoop makes the reservations asked for until ctx is done.
func (b *seqBlocks) refillLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.closed = true
			b.cond.Broadcast()
			b.mu.Unlock()
			return
		case <-b.kick:
		}
		rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
		v, err := b.reserve(rctx)
		cancel()
		b.mu.Lock()
		b.asking = false
		if err != nil {
			b.failed = err
		} else {
			b.spare, b.failed = v, nil
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}
