package wal

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// Every write of a Txn reads back through Writes in order, and each kind's value decodes to
// what was written.
func TestTxnWritesReadBack(t *testing.T) {
	job := Record{Seq: 7, Handle: "H:x:7", Function: "fn", Unique: "u", Reducer: "r", Priority: 2, RunAt: 99,
		Attempts: 3, FirstFailed: 12345, Data: []byte("data\x00")}
	fs := FunctionSettings{Name: "fn", MaxQueue: [3]int{1, 2, 3}, Paused: true, Limit: 4,
		Retry: RetryPolicy{Attempts: 3, Base: time.Second, Max: time.Minute}}
	res := Result{Seq: 7, Handle: "H:x:7", Function: "fn", Unique: "u", Outcome: OutcomeException, Data: []byte("boom"),
		Attempts: 2, Created: 1, Started: 2, Finished: 3, Expires: 4}
	dead := DeadLetter{Job: job, LastOutcome: OutcomeFail, LastError: []byte("e"), FirstFailed: 5, LastFailed: 6}
	sched := Schedule{Seq: 8, Handle: "H:x:8", Function: "fn", Spec: "* * * * *", Location: "UTC", Priority: 1, Data: []byte("d")}

	var txn Txn
	txn.PutJob(job)
	txn.DeleteJob(9)
	txn.PutFunction(fs)
	txn.DeleteFunction("gone")
	txn.PutResult(res)
	txn.PutDead(dead)
	txn.DeleteDead(10)
	txn.PutSchedule(sched)
	txn.DeleteSchedule(11)
	txn.Put('x', []byte("k"), []byte{1, 2})
	txn.Delete('x', []byte("k2"))
	if err := txn.Err(); err != nil {
		t.Fatal(err)
	}

	var got []string
	for w := range txn.Writes {
		got = append(got, string(rune(w.Op))+string(rune(w.Kind)))
		switch {
		case w.Op == TxnPut && w.Kind == KindJob:
			r, err := w.Job()
			if err != nil || !reflect.DeepEqual(r, job) {
				t.Errorf("job: %+v %v", r, err)
			}
		case w.Op == TxnDelete && w.Kind == KindJob:
			if s, ok := w.Seq(); !ok || s != 9 {
				t.Errorf("deleted job seq %d %v", s, ok)
			}
		case w.Op == TxnPut && w.Kind == KindFunction:
			f, err := w.Function()
			if err != nil || !reflect.DeepEqual(f, fs) {
				t.Errorf("function: %+v %v", f, err)
			}
			if f2, err := DecodeFunction("fn", w.Value); err != nil || !reflect.DeepEqual(f2, fs) {
				t.Errorf("DecodeFunction: %+v %v", f2, err)
			}
		case w.Op == TxnDelete && w.Kind == KindFunction:
			if string(w.Key) != "gone" {
				t.Errorf("deleted function %q", w.Key)
			}
		case w.Kind == KindResult:
			if _, ok := w.ResultSeq(); !ok {
				continue // the by-unique entry
			}
			r, err := w.Result()
			if err != nil || !reflect.DeepEqual(r, res) {
				t.Errorf("result: %+v %v", r, err)
			}
		case w.Op == TxnPut && w.Kind == KindDead:
			d, err := w.Dead()
			if err != nil || !reflect.DeepEqual(d, dead) {
				t.Errorf("dead: %+v %v", d, err)
			}
			if d2, err := DecodeDead(7, w.Value); err != nil || !reflect.DeepEqual(d2, dead) {
				t.Errorf("DecodeDead: %+v %v", d2, err)
			}
		case w.Op == TxnPut && w.Kind == KindSchedule:
			s, err := w.Schedule()
			if err != nil || !reflect.DeepEqual(s, sched) {
				t.Errorf("schedule: %+v %v", s, err)
			}
			if s2, err := DecodeSchedule(8, w.Value); err != nil || !reflect.DeepEqual(s2, sched) {
				t.Errorf("DecodeSchedule: %+v %v", s2, err)
			}
		case w.Op == TxnPut && w.Kind == 'x':
			if string(w.Key) != "k" || !bytes.Equal(w.Value, []byte{1, 2}) {
				t.Errorf("other: %q %q", w.Key, w.Value)
			}
		}
	}
	want := []string{"sj", "dj", "sf", "df", "sc", "sc", "sd", "dd", "ss", "ds", "sx", "dx"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
	// Stopping early stops.
	n := 0
	for range txn.Writes {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("break after the first write: %d", n)
	}
}
