package fuzz

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// blank is what SplitAdmin separates words on.
func blank(c byte) bool { return c == ' ' || c == '\t' }

// referenceWords splits line on runs of blanks, independently of codec.
func referenceWords(line []byte) []string {
	var words []string
	for _, f := range bytes.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' }) {
		words = append(words, string(f))
	}
	return words
}

// collapse trims the line and turns every run of blanks into a single space.
func collapse(line []byte) string {
	var sb strings.Builder
	pending := false
	for _, c := range line {
		if blank(c) {
			pending = sb.Len() > 0
			continue
		}
		if pending {
			sb.WriteByte(' ')
			pending = false
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// swapASCIICase flips the case of ASCII letters only.
func swapASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func FuzzSplitAdmin(f *testing.F) {
	for _, s := range adminSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		w, err := codec.SplitAdmin(line)
		want := referenceWords(line)
		if len(want) > codec.MaxAdminWords {
			if err != codec.ErrTooManyWords {
				t.Fatalf("%d words: err %v, want ErrTooManyWords", len(want), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d words: err %v", len(want), err)
		}
		if w.N != len(want) || w.N > codec.MaxAdminWords {
			t.Fatalf("N = %d, want %d", w.N, len(want))
		}
		got := make([]string, w.N)
		for i := 0; i < w.N; i++ {
			word := w.Word(i)
			if len(word) == 0 || bytes.IndexByte(word, ' ') >= 0 || bytes.IndexByte(word, '\t') >= 0 {
				t.Fatalf("word %d %q is empty or holds a blank", i, word)
			}
			if !within(line, word) {
				t.Fatalf("word %d does not alias the line", i)
			}
			if string(word) != want[i] {
				t.Fatalf("word %d = %q, want %q", i, word, want[i])
			}
			if !w.Is(i, string(word)) || !w.Is(i, swapASCIICase(string(word))) {
				t.Fatalf("Is(%d, %q) false for its own word or its case swap", i, word)
			}
			if w.Is(i, string(word)+"x") || w.Is(i, string(word[1:])) {
				t.Fatalf("Is(%d, ...) true for a different length", i)
			}
			// Changing one non-letter byte must break equality (ASCII folding only).
			for j, c := range word {
				if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
					continue
				}
				other := []byte(string(word))
				other[j] ^= 0x80
				if w.Is(i, string(other)) {
					t.Fatalf("Is(%d, %q) true for word %q", i, other, word)
				}
				break
			}
			got[i] = string(word)
		}
		if strings.Join(got, " ") != collapse(line) {
			t.Fatalf("words joined %q != collapsed line %q", strings.Join(got, " "), collapse(line))
		}
		if w.Word(w.N) != nil || w.Is(w.N, "") {
			t.Fatalf("word past N is not empty")
		}
	})
}
