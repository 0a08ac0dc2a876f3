package ingress

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// firstBodyChunk is the most a body read allocates before any of its bytes
// arrived: a Content-Length is a claim, not memory the sender has spent.
// Slack's requests are a few KiB and usually fit in one allocation.
const firstBodyChunk = 8 << 10

// errBusy: the bytes in flight budget cannot cover one more body buffer.
var errBusy = errors.New("too many request bytes in flight")

// errLongerThanDeclared: the body went on past its Content-Length.
var errLongerThanDeclared = errors.New("body longer than its Content-Length")

// byteBudget bounds the bytes of request bodies held by all requests at once,
// so that many slow or idle senders cannot grow the heap past the container's
// limit before their signatures can even be checked.
type byteBudget struct {
	limit   int64
	used    atomic.Int64
	readers atomic.Int64 // bodies being read, for the metric
}

// take reserves n bytes, or reports false without reserving anything.
func (b *byteBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *byteBudget) give(n int64) { b.used.Add(-n) }

// readBody reads r's body, at most maxBytes bytes, into a buffer that grows as bytes
// arrive (never sized from Content-Length alone), charging every growth to
// budget. held is what the caller must give back to budget once the body is no
// longer needed, whatever the error.
func readBody(w http.ResponseWriter, r *http.Request, maxBytes int64, budget *byteBudget) (body []byte, held int64, err error) {
	budget.readers.Add(1)
	defer budget.readers.Add(-1)
	limit := maxBytes
	if r.ContentLength >= 0 && r.ContentLength < limit {
		limit = r.ContentLength
	}
	rd := http.MaxBytesReader(w, r.Body, maxBytes)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == limit {
				// The body must end here; one byte more is too long.
				var one [1]byte
				n, err := rd.Read(one[:])
				switch {
				case n > 0 && limit < maxBytes:
					return nil, held, errLongerThanDeclared
				case n == 0 && errors.Is(err, io.EOF):
					return buf, held, nil
				case err != nil:
					return nil, held, err // *http.MaxBytesError past maxBytes
				}
				continue // a reader may return 0, nil: ask again
			}
			next := min(limit, int64(max(2*cap(buf), firstBodyChunk)))
			if !budget.take(next - int64(cap(buf))) {
				return nil, held, errBusy
			}
			held += next - int64(cap(buf))
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}
