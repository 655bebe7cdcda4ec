package queue

import (
	"hash/maphash"
	"sort"
	"sync"
)

// NumShards is the number of function shards and of handle-index shards.
const NumShards = 64

// Registry is all functions, sharded by name, plus an index from job handle to job and one
// from unique id to job. Its methods are safe for concurrent use.
type Registry struct {
	seed   maphash.Seed
	shards [NumShards]Shard
	index  [NumShards]indexShard
}

// Shard is one lock's worth of functions. Lock it before touching any of its functions or
// their jobs; hold one shard at a time.
type Shard struct {
	mu        sync.Mutex
	funcs     map[string]*Function
	funcsPeak int // most functions since funcs was made (see shrinkMap)
	reg       *Registry
	idle      []*Function // functions that went idle, for SweepIdle (see sweep.go)
	roomy     []*Function // functions whose "-" index emptied out, likewise
	uniques   keyIndex    // unique id -> live job, for all the shard's functions
	retired   Stats       // the Stats of its functions deleted since start
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].funcs = make(map[string]*Function)
		r.shards[i].reg = r
		r.index[i].chunks = make(map[uint64]*indexChunk)
	}
	return r
}

// ShardFor returns the shard that owns function name.
func (r *Registry) ShardFor(name []byte) *Shard {
	return &r.shards[maphash.Bytes(r.seed, name)%NumShards]
}

// EachShard calls fn with each shard in turn, locked.
func (r *Registry) EachShard(fn func(*Shard)) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		fn(s)
		s.mu.Unlock()
	}
}

// Lock acquires the shard.
func (s *Shard) Lock() { s.mu.Lock() }

// Unlock releases the shard.
func (s *Shard) Unlock() { s.mu.Unlock() }

// Get returns the function called exactly name (case matters), or nil.
func (s *Shard) Get(name []byte) *Function { return s.funcs[string(name)] }

// Ensure returns the function called name, creating it if needed. A function created and
// left with nothing is deleted by the next sweeps (see SweepIdle).
func (s *Shard) Ensure(name []byte) *Function {
	if f := s.funcs[string(name)]; f != nil {
		return f
	}
	f := &Function{Name: string(name), shard: s, byData: keyIndex{byData: true}}
	s.funcs[f.Name] = f
	s.funcsPeak = max(s.funcsPeak, len(s.funcs))
	f.noteIfIdle()
	return f
}

// Delete removes the function record f, and no other: not one made since under the same
// name. The caller checks that it has no jobs or workers.
func (s *Shard) Delete(f *Function) {
	if s.funcs[f.Name] == f {
		s.remove(f)
	}
}

// remove deletes f, the shard's function of its name.
func (s *Shard) remove(f *Function) {
	s.retired.Add(&f.Stats)
	delete(s.funcs, f.Name)
	s.funcs = shrinkMap(s.funcs, &s.funcsPeak)
	if s.funcs == nil {
		s.funcs = make(map[string]*Function)
	}
}

// NumFunctions returns how many functions the shard holds; a cheap emptiness test for
// invariant checks that visit every shard.
func (s *Shard) NumFunctions() int { return len(s.funcs) }

// EachFunction calls fn for each of the shard's functions, in no particular order.
func (s *Shard) EachFunction(fn func(*Function)) {
	for _, f := range s.funcs {
		fn(f)
	}
}

// Functions returns the shard's functions sorted by name.
func (s *Shard) Functions() []*Function {
	out := make([]*Function, 0, len(s.funcs))
	for _, f := range s.funcs {
		out = append(out, f)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// Jobs returns every live job in submission order. Read a job's mutable fields only with its
// function's shard locked, and check State: it may have finished since.
func (r *Registry) Jobs() []*Job {
	var out []*Job
	r.eachIndexed(func(j *Job) { out = append(out, j) })
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out
}
