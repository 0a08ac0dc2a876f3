package ingress

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody: a body costs the budget what arrived (rounded up to the next
// growth), never what was announced, and no more than the cap.
func TestReadBody(t *testing.T) {
	const maxBytes = 64 << 10
	tests := []struct {
		name     string
		body     io.Reader
		declared int64 // -1: chunked, no Content-Length
		budget   int64
		want     string
		wantErr  func(error) bool
		maxHeld  int64
	}{
		{name: "small, declared", body: strings.NewReader("hello"), declared: 5, budget: maxBytes, want: "hello", maxHeld: 5},
		{name: "empty", body: http.NoBody, declared: 0, budget: maxBytes, want: "", maxHeld: 0},
		{name: "chunked", body: strings.NewReader("hello"), declared: -1, budget: maxBytes, want: "hello", maxHeld: firstBodyChunk},
		{name: "one byte at a time", body: iotest.OneByteReader(strings.NewReader(strings.Repeat("x", 20000))), declared: 20000,
			budget: maxBytes, want: strings.Repeat("x", 20000), maxHeld: 20000},
		{name: "announces the cap, sends little", body: strings.NewReader("{}"), declared: maxBytes, budget: maxBytes,
			want: "{}", maxHeld: firstBodyChunk},
		{name: "chunked over the cap", body: strings.NewReader(strings.Repeat("x", maxBytes+1)), declared: -1, budget: maxBytes,
			wantErr: func(err error) bool { var e *http.MaxBytesError; return errors.As(err, &e) }, maxHeld: maxBytes},
		{name: "exactly the cap", body: strings.NewReader(strings.Repeat("x", maxBytes)), declared: -1, budget: maxBytes,
			want: strings.Repeat("x", maxBytes), maxHeld: maxBytes},
		{name: "longer than declared", body: strings.NewReader("hello world"), declared: 5, budget: maxBytes,
			wantErr: func(err error) bool { return errors.Is(err, errLongerThanDeclared) }, maxHeld: 5},
		{name: "budget spent", body: strings.NewReader("hello"), declared: 5, budget: 4,
			wantErr: func(err error) bool { return errors.Is(err, errBusy) }, maxHeld: 0},
		{name: "budget spent while growing", body: strings.NewReader(strings.Repeat("x", 3*firstBodyChunk)), declared: -1, budget: 2 * firstBodyChunk,
			wantErr: func(err error) bool { return errors.Is(err, errBusy) }, maxHeld: 2 * firstBodyChunk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/slack/events", nil)
			r.Body, r.ContentLength = io.NopCloser(tt.body), tt.declared
			if tt.declared > 0 {
				// What net/http does with a declared length: the handler never reads past it...
				r.Body = io.NopCloser(io.LimitReader(tt.body, tt.declared))
				if tt.name == "longer than declared" {
					r.Body = io.NopCloser(tt.body) // ...unless the request did not come from net/http's server.
				}
			}
			b := &byteBudget{limit: tt.budget}
			body, held, err := readBody(httptest.NewRecorder(), r, maxBytes, b)
			if held > tt.maxHeld || b.used.Load() != held {
				t.Errorf("held %d (budget used %d), want at most %d", held, b.used.Load(), tt.maxHeld)
			}
			if b.readers.Load() != 0 {
				t.Errorf("%d readers still counted", b.readers.Load())
			}
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || string(body) != tt.want {
				t.Fatalf("got %q, %v", body, err)
			}
		})
	}
}
