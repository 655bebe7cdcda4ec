package main

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        "plain",
		`finished\x0a`: "finished\n",
		`a\x5cb\x09c`:  "a\\b\tc",
		`bad\xzz`:      `bad\xzz`,
		`cut\x0`:       `cut\x0`,
		`\x00\x7f`:     "\x00\x7f",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseWorker(t *testing.T) {
	w := parseWorker("12 127.0.0.1 image worker draining : resize crop")
	if w.ID != "12" || w.Address != "127.0.0.1" || w.ClientID != "image worker" || !w.Draining || len(w.Functions) != 2 {
		t.Fatalf("%+v", w)
	}
	if w := parseWorker("7 ::1 - :"); w.ClientID != "-" || len(w.Functions) != 0 || w.Functions == nil {
		t.Fatalf("%+v", w)
	}
}
