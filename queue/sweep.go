package queue

import "time"

// Registry.SweepIdle is the registry's periodic upkeep, run by the engine from a ticker. It
// deletes idle functions after a grace period, and gives back the index space of drained
// backlogs.
//
// Idle functions: a server that saw millions of function names must not keep a record, and
// its emptied FIFO blocks and index maps, for each of them forever. A function becomes idle
// when its last job leaves (Forget), its last worker leaves (RemoveWorker), or it is made
// (Ensure) or has its settings cleared (NoteSettingsChanged) with nothing else. The shard
// then lists it — once: a listed function is not listed again — in its idle list, which
// costs the hot path nothing but that check on those rare transitions; the clock is not read
// there. The sweep walks the lists under each shard's lock: a listed function no longer idle
// leaves the list; an idle one not yet stamped is stamped with the sweep's time; one stamped
// at least grace ago is deleted. A function going idle again after being busy has its stamp
// cleared, so it is deleted between grace and grace plus one sweep interval after it last
// became idle.
//
// Index space: a function whose coalescing index fell to a quarter of its peak is listed in
// its shard's roomy list (again once), and the sweep remakes the index smaller if it still
// is, and a shard's unique index likewise. Doing this here rather than on
// the removal that made the map roomy is what keeps batch workloads fast (see shrinkMap).
// HasSettings reports whether the function has settings of its own (a queue limit, or being
// declared by `create function`), which keep it from ever being swept.
func (f *Function) HasSettings() bool {
	return f.Declared || f.Paused || f.Limit != 0 || f.Retry != RetryPolicy{} || f.MaxQueue != [NumPriorities]int{}
}

// Idle reports whether the function holds nothing worth keeping: no job (queued, delayed or
// running), no worker, no settings of its own.
func (f *Function) Idle() bool {
	return f.Total == 0 && len(f.Workers) == 0 && !f.HasSettings()
}

// NoteSettingsChanged lets the sweeper see a function whose settings were cleared (for
// example `maxqueue FN 0`): if it is idle now, it is deleted after the grace period. Call with
// the shard locked.
func (f *Function) NoteSettingsChanged() { f.noteIfIdle() }

// noteIfIdle lists f in its shard's idle list if it is idle, and restarts its grace period.
func (f *Function) noteIfIdle() {
	if !f.Idle() {
		return
	}
	f.idleSince = 0
	if !f.idleListed {
		f.idleListed = true
		f.shard.idle = append(f.shard.idle, f)
	}
}

// SweepIdle deletes the functions idle since at least grace before now (see above) and
// returns how many it deleted; a deleted function's WakeTimer is stopped. It also remakes
// smaller the index maps of backlogs that drained since the last sweep. Safe for concurrent
// use; it takes each shard's lock in turn.
func (r *Registry) SweepIdle(now time.Time, grace time.Duration) int {
	t := now.UnixNano()
	deleted := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if len(s.roomy) > 0 {
			s.shrinkRoomy()
		}
		if s.uniques.roomy() {
			s.uniques.shrink()
		}
		if len(s.idle) > 0 {
			deleted += s.sweepIdle(t, int64(grace))
		}
		s.mu.Unlock()
	}
	return deleted
}

// shrinkRoomy remakes smaller the coalescing indexes that emptied out since the last sweep.
func (s *Shard) shrinkRoomy() {
	for _, f := range s.roomy {
		f.roomyListed = false
		f.byData.shrink()
	}
	clear(s.roomy)
	s.roomy = s.roomy[:0]
	if cap(s.roomy) > shrinkMin {
		s.roomy = nil
	}
}

func (s *Shard) sweepIdle(now, grace int64) int {
	deleted := 0
	kept := s.idle[:0]
	for _, f := range s.idle {
		switch {
		case s.funcs[f.Name] != f || !f.Idle(): // deleted by Delete meanwhile, or busy again
			f.idleListed = false
		case f.idleSince == 0:
			f.idleSince = now
			kept = append(kept, f)
		case now-f.idleSince >= grace:
			f.idleListed = false
			if f.WakeTimer != nil {
				f.WakeTimer.Stop()
			}
			if f.WakeCheck != nil {
				f.WakeCheck.Stop()
			}
			s.remove(f)
			deleted++
		default:
			kept = append(kept, f)
		}
	}
	clear(s.idle[len(kept):])
	s.idle = kept
	if roomy(len(kept), cap(kept)) {
		s.idle = append([]*Function(nil), kept...) // give back what a burst of names grew
	}
	return deleted
}
