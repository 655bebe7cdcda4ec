// Package fuzz holds Spur's native Go fuzz targets; it has no non-test code.
//
// Plain `go test ./fuzz/` runs every target over its seed corpus (testdata/fuzz/<Name>/ plus
// the f.Add seeds). To fuzz one target:
//
//	go test ./fuzz/ -run '^$' -fuzz '^FuzzParse$' -fuzztime 60s
//	go test ./fuzz/ -run '^$' -fuzz '^FuzzSplitAdmin$' -fuzztime 60s
//	go test ./fuzz/ -run '^$' -fuzz '^FuzzEngine$' -fuzztime 10m
//
// FuzzEngine drives a whole in-process engine (sessions, fake transport, fake job store)
// with programs decoded from the input and checks engine.CheckInvariants after every step;
// see its doc comment for the program format. SPUR_FUZZ_TRACE=1 logs every packet the server
// sends while a seed or crasher re-runs:
//
//	SPUR_FUZZ_TRACE=1 go test ./fuzz/ -run 'FuzzEngine/NAME' -v
//
// A failing input is written to testdata/fuzz/<Name>/; once the bug is fixed, keep that file
// as a regression seed. The committed seed files are generated from the seed lists in
// seeds_test.go:
//
//	go test ./fuzz/ -run '^TestSeedCorpus$' -update-corpus
package fuzz
